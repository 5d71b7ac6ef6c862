"""The HTTP layer every door goes through: the one authentication gate (``gate``), request
size limits, cross-site checks of page forms, security headers, the client address and how
the server runs. The application that puts them around the routers is ``hssk.app``.
"""
