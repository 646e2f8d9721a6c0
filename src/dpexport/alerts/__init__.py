"""Alerts (CONTRACT §10, spec 9.1, 5.2 ``trigger_alert``, 7.2 escalation).

- :mod:`.model`: what an alert is, where it goes (``alert: "Slack + PagerDuty"``), what a
  delivery reports;
- rules and incidents decide when an alert fires and resolves (one incident per rule and
  table, kept in ``_state/alerts/``);
- channels deliver it (PagerDuty Events API v2, Slack incoming webhooks, email over
  SMTP), within the spec 7.1 retry budget and a bounded timeout, never in the way of the
  export.
"""
