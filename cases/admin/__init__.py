"""The cases admin: queues (whose grants say who works them) and cases, read-only with their routing and audit trail;
the input as the user may see it (redacted without `cases.view_pii`), and the retention purge by hand.

A list page costs a fixed number of queries whatever the number of rows (`list_select_related`, filters whose
choices come from the small category and queue tables), and shows only what `visible_to(user)` allows.

- `filters`: the case list's own filters;
- `queues`: the queue admin and its form (SLA and overflow, with a reason);
- `cases`: the case admin, the retention purge, and the filters layers above register on the list;
- `incidents`: the incident page's panel of affected cases.
"""

from cases.admin.cases import CaseAdmin, register_case_list_filter
from cases.admin.incidents import affected_cases
from cases.admin.queues import QueueAdmin

__all__ = [
    "CaseAdmin",
    "QueueAdmin",
    "affected_cases",
    "register_case_list_filter",
]
