"""Citizen health book (Sổ sức khỏe điện tử), clinician workspace and commune-station forms.

Pages are in ``pages`` by audience (``auth``, ``book``, ``clinic``, ``station``), each module
with its ``router`` mounted by ``hssk.app``; the partner book API is ``hssk.api.book``:

* citizens: ``/book/login`` (CCCD or phone + one-time code), ``/book``, ``/book/p/{id}``
  (a child's book), ``/book/consents``, ``/book/access-log``, ``/book/self``, PDFs of a visit
  (``/book/p/{id}/visit/{visit}.pdf``) and of the whole book (``/book/p/{id}/book.pdf``),
  whose QR code opens ``/verify/{token}`` (``verify.router``, public);
* health workers: ``/staff/login``, ``/clinic`` (search), ``/clinic/p/{id}`` (basis, timeline),
  referral and re-examination forms, ``/station/checkup|household|death`` (mapped and
  checked by ``ingest.station_map`` like the station CSV, the person confirmed before saving;
  deaths and households applied to the person), ``/station/death-amend`` (the audited
  correction of a recorded date of death);
* partner apps: ``GET /api/v1/book/{id}?v=1``, ``GET /api/v1/me/book?v=1``,
  ``GET /api/v1/book/{id}/fields?catalog=qd1332``.

Python API: ``book.build_book(person, resources, sections=..., include_sensitive=...)`` →
``models.HealthBook``; ``schedule.child_schedule(birth, given, today)``;
``pdf.book_pdf`` / ``pdf.render_pdf`` (signed through ``access.pdfsign``, which checks them
too); ``demo.seed_family(conn)``; ``bench.run_bench``.
"""
