"""Server-rendered pages, one module per audience, each with its ``router`` (mounted by
``hssk.app``): ``auth`` (citizen and staff login, logout), ``book`` (the citizen's book, consents,
access log, own entries, PDFs), ``clinic`` (the clinician's search, timeline, referral and
re-examination forms), ``station`` (commune-station check-up, household and death forms).
``guards`` holds what several of them share (who may see a page, where to log in).
"""
