"""``dpexport dashboard`` (issue 23, spec 9.2): a read-only web page over the export logs.

:mod:`.data` gathers the figures (those of ``dpexport status``, from the same records),
:mod:`.page` and :mod:`.detail` render them as HTML with :mod:`.charts`' inline SVG,
and :mod:`.server` serves them with the standard library's ``ThreadingHTTPServer``. The
stylesheet and the script are in ``static/``, shipped in the package: nothing is
loaded from elsewhere, so the page works offline.
"""
