"""The service layer: every write, as load -> act -> commit in one call, knowing no HTTP.

``students`` and ``courses`` hold their writes, ``enrollment`` the enrollment
rules, ``audit`` the enrollment audit trail, ``errors`` the domain errors they
raise. ``app.errors`` maps those errors to HTTP answers.
"""
