"""Resource types the record store serves, and which elements feed its search columns."""

from __future__ import annotations

# Types readable and searchable through /fhir (CapabilityStatement is built from this).
CLINICAL_TYPES = (
    "Encounter", "Condition", "Observation", "MedicationRequest", "MedicationDispense",
    "Immunization", "DiagnosticReport", "ServiceRequest", "Procedure", "Appointment",
    "DocumentReference", "AllergyIntolerance", "Claim", "Composition", "Consent",
    "Coverage", "MedicationAdministration", "CarePlan", "EpisodeOfCare", "RelatedPerson",
    "ImmunizationRecommendation", "ImmunizationEvaluation", "Specimen", "ClinicalImpression",
)  # fmt: skip
# Types that carry no personal health data of one person.
DIRECTORY_TYPES = ("Organization", "Practitioner", "PractitionerRole", "Location", "Medication")
SUPPORTED_TYPES = ("Patient", *CLINICAL_TYPES, *DIRECTORY_TYPES)

# Element holding the patient reference, per type (first present wins).
SUBJECT_PATHS: dict[str, tuple[str, ...]] = {
    "Encounter": ("subject",),
    "Condition": ("subject",),
    "Observation": ("subject",),
    "MedicationRequest": ("subject",),
    "MedicationDispense": ("subject",),
    "Immunization": ("patient",),
    "DiagnosticReport": ("subject",),
    "ServiceRequest": ("subject",),
    "Procedure": ("subject",),
    "DocumentReference": ("subject",),
    "AllergyIntolerance": ("patient",),
    "Claim": ("patient",),
    "Composition": ("subject",),
    "Consent": ("patient",),
    "Coverage": ("beneficiary",),
    "MedicationAdministration": ("subject",),
    "CarePlan": ("subject",),
    "EpisodeOfCare": ("patient",),
    "RelatedPerson": ("patient",),
    "ImmunizationRecommendation": ("patient",),
    "ImmunizationEvaluation": ("patient",),
    "Specimen": ("subject",),
    "ClinicalImpression": ("subject",),
}

# Element(s) holding the searchable code (CodeableConcept), per type.
CODE_PATHS: dict[str, tuple[str, ...]] = {
    "Encounter": ("type", "reasonCode"),
    "Condition": ("code",),
    "Observation": ("code",),
    "MedicationRequest": ("medicationCodeableConcept",),
    "MedicationDispense": ("medicationCodeableConcept",),
    "Immunization": ("vaccineCode",),
    "DiagnosticReport": ("code",),
    "ServiceRequest": ("code",),
    "Procedure": ("code",),
    "Appointment": ("serviceType", "reasonCode"),
    "DocumentReference": ("type",),
    "AllergyIntolerance": ("code",),
    "Composition": ("type",),
    "Organization": ("type",),
}

# Element(s) giving the clinically relevant date, per type (first present wins).
DATE_PATHS: dict[str, tuple[str, ...]] = {
    "Encounter": ("period.start",),
    "Condition": ("onsetDateTime", "recordedDate"),
    "Observation": ("effectiveDateTime", "effectivePeriod.start", "issued"),
    "MedicationRequest": ("authoredOn",),
    "MedicationDispense": ("whenHandedOver", "whenPrepared"),
    "Immunization": ("occurrenceDateTime", "recorded"),
    "DiagnosticReport": ("effectiveDateTime", "effectivePeriod.start", "issued"),
    "ServiceRequest": ("authoredOn", "occurrenceDateTime"),
    "Procedure": ("performedDateTime", "performedPeriod.start"),
    "Appointment": ("start", "created"),
    "DocumentReference": ("date",),
    "AllergyIntolerance": ("recordedDate", "onsetDateTime"),
    "Claim": ("created",),
    "Composition": ("date",),
    "Consent": ("dateTime",),
    "Patient": ("birthDate",),
}
