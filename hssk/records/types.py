"""Resource types the record store serves, and which elements feed its search columns.

Every FHIR R4 resource type can be stored, versioned, read and searched. The types below are
grouped by what they hold: a person's clinical data (linked to the person through the element of
``SUBJECT_PATHS``, the R4 Patient compartment), directory and knowledge resources without
personal data (readable by any authenticated caller), and the rest (administrative resources that
may name persons without belonging to one: only systems write them, nobody reads them without a
rule that allows it).
"""

from __future__ import annotations

CLINICAL_TYPES = (
    "Encounter", "Condition", "Observation", "MedicationRequest", "MedicationDispense",
    "Immunization", "DiagnosticReport", "ServiceRequest", "Procedure", "Appointment",
    "DocumentReference", "AllergyIntolerance", "Claim", "Composition", "Consent",
    "Coverage", "MedicationAdministration", "CarePlan", "EpisodeOfCare", "RelatedPerson",
    "ImmunizationRecommendation", "ImmunizationEvaluation", "Specimen", "ClinicalImpression",
    # the rest of R4's Patient compartment
    "Account", "AdverseEvent", "AppointmentResponse", "Basic", "BodyStructure", "CareTeam",
    "ChargeItem", "ClaimResponse", "Communication", "CommunicationRequest", "Contract",
    "CoverageEligibilityRequest", "CoverageEligibilityResponse", "DetectedIssue", "DeviceRequest",
    "DeviceUseStatement", "DocumentManifest", "EnrollmentRequest", "ExplanationOfBenefit",
    "FamilyMemberHistory", "Flag", "Goal", "GuidanceResponse", "ImagingStudy", "Invoice", "List",
    "Media", "MedicationStatement", "MolecularSequence", "NutritionOrder", "Provenance",
    "QuestionnaireResponse", "ResearchSubject", "RiskAssessment", "Schedule", "SupplyDelivery",
    "SupplyRequest", "Task", "VisionPrescription", "Device",
)  # fmt: skip
# Types that carry no personal health data of one person: directory, terminology, knowledge.
DIRECTORY_TYPES = (
    "Organization", "Practitioner", "PractitionerRole", "Location", "Medication",
    "ActivityDefinition", "ChargeItemDefinition", "CodeSystem", "CompartmentDefinition",
    "ConceptMap", "DeviceDefinition", "Endpoint", "EventDefinition", "Evidence",
    "EvidenceVariable", "ExampleScenario", "GraphDefinition", "HealthcareService",
    "ImplementationGuide", "InsurancePlan", "Library", "Measure", "MedicationKnowledge",
    "MessageDefinition", "NamingSystem", "ObservationDefinition", "OperationDefinition",
    "OrganizationAffiliation", "PlanDefinition", "Questionnaire", "ResearchDefinition",
    "ResearchElementDefinition", "SearchParameter", "SpecimenDefinition", "StructureDefinition",
    "StructureMap", "Substance", "TerminologyCapabilities", "TestScript", "ValueSet",
    # R4B names of the product and evidence resources
    "AdministrableProductDefinition", "Citation", "ClinicalUseDefinition", "EvidenceReport",
    "Ingredient", "ManufacturedItemDefinition", "MedicinalProductDefinition", "NutritionProduct",
    "PackagedProductDefinition", "RegulatedAuthorization", "SubscriptionTopic",
    "SubstanceDefinition",
    # R4 only (R4B replaced them): stored and checked for their shape only
    "EffectEvidenceSynthesis", "MedicinalProduct", "MedicinalProductAuthorization",
    "MedicinalProductContraindication", "MedicinalProductIndication",
    "MedicinalProductIngredient", "MedicinalProductInteraction", "MedicinalProductManufactured",
    "MedicinalProductPackaged", "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect", "RiskEvidenceSynthesis", "SubstanceNucleicAcid",
    "SubstancePolymer", "SubstanceProtein", "SubstanceReferenceInformation",
    "SubstanceSourceMaterial", "SubstanceSpecification",
)  # fmt: skip
# Types with their own endpoints or that are never stored as such.
NOT_STORED = frozenset(
    {"Resource", "DomainResource", "Bundle", "Parameters", "OperationOutcome",
     "CapabilityStatement", "AuditEvent"}
)  # fmt: skip
R4_ONLY_TYPES = frozenset(DIRECTORY_TYPES[DIRECTORY_TYPES.index("EffectEvidenceSynthesis") :])


# Administrative resources that may name persons without belonging to one person.
OTHER_TYPES = (
    "Binary", "BiologicallyDerivedProduct", "CatalogEntry", "DeviceMetric", "EnrollmentResponse",
    "Group", "Linkage", "MeasureReport", "MessageHeader", "PaymentNotice", "PaymentReconciliation",
    "Person", "RequestGroup", "ResearchStudy", "Slot", "Subscription", "SubscriptionStatus",
    "TestReport", "VerificationResult",
)  # fmt: skip
SUPPORTED_TYPES = ("Patient", *CLINICAL_TYPES, *DIRECTORY_TYPES, *OTHER_TYPES)

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
    "Account": ("subject",),
    "AdverseEvent": ("subject",),
    "AppointmentResponse": ("actor",),
    "Basic": ("subject",),
    "BodyStructure": ("patient",),
    "CareTeam": ("subject",),
    "ChargeItem": ("subject",),
    "ClaimResponse": ("patient",),
    "Communication": ("subject",),
    "CommunicationRequest": ("subject",),
    "Contract": ("subject",),
    "CoverageEligibilityRequest": ("patient",),
    "CoverageEligibilityResponse": ("patient",),
    "DetectedIssue": ("patient",),
    "Device": ("patient",),
    "DeviceRequest": ("subject",),
    "DeviceUseStatement": ("subject",),
    "DocumentManifest": ("subject",),
    "EnrollmentRequest": ("candidate",),
    "ExplanationOfBenefit": ("patient",),
    "FamilyMemberHistory": ("patient",),
    "Flag": ("subject",),
    "Goal": ("subject",),
    "GuidanceResponse": ("subject",),
    "ImagingStudy": ("subject",),
    "Invoice": ("subject",),
    "List": ("subject",),
    "Media": ("subject",),
    "MedicationStatement": ("subject",),
    "MolecularSequence": ("patient",),
    "NutritionOrder": ("patient",),
    "Provenance": ("target",),
    "QuestionnaireResponse": ("subject",),
    "ResearchSubject": ("individual",),
    "RiskAssessment": ("subject",),
    "Schedule": ("actor",),
    "SupplyDelivery": ("patient",),
    "SupplyRequest": ("deliverTo",),
    "Task": ("for",),
    "VisionPrescription": ("patient",),
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
