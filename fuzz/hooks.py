"""schemathesis hooks for tagd: a check that no answer to organization A shows organization B."""
import os

import schemathesis

# Strings that exist only in organization B: its corp_id, app id, group ids, user ids, labels.
MARKERS = [m for m in os.environ.get("TAGD_FUZZ_OTHER_ORG_MARKERS", "").split(",") if m]


@schemathesis.check
def no_cross_organization_read(ctx, response, case):
    # The operator's list of every organization is meant to show them all.
    if case.method.upper() == "GET" and case.operation.path == "/admin/v1/orgs":
        return None
    text = response.text or ""
    for marker in MARKERS:
        if marker in text:
            raise AssertionError(f"the answer shows another organization's data: {marker!r}")
    return None
