"""`manage.py evaluate_actions` on the demo question set: the matcher's rates stay where
docs/actions.md reports them (no database: the demo's actions are unsaved)."""

from __future__ import annotations

import io
import json

from django.core.management import call_command


def test_demo_set_rates():
    out = io.StringIO()
    call_command("evaluate_actions", "--json", stdout=out)
    result = json.loads(out.getvalue())
    report, rows = result["report"], result["rows"]
    assert report["questions"] == 62 and report["action_questions"] == 23
    # No article question about orders, cancelling or tracking runs an action.
    assert report["no_action_for_articles"] == 1.0
    assert report["right_action"] >= 0.98 and report["right_params"] >= 0.95
    # A changing action is never chosen where a lookup was meant.
    assert not [
        r for r in rows if r["chosen"] == "cancel_order" and r["expected"] != "cancel_order"
    ]
