"""Who may call what: the role groups of the API (ARCHITECTURE §7, DOMAIN.md §5).

| Resource                         | admin | analyst | provider-analyst | sysadmin | manager | drill |
|----------------------------------|-------|---------|------------------|----------|---------|-------|
| health, login                    | anyone, no token                                                 |
| roles, me, logout                | yes   | yes     | yes              | yes      | yes     | yes   |
| sources, rules (read)            | yes   | yes     | yes              | yes      | yes     | yes   |
| rules (change)                   | yes   | yes     | –                | –        | –       | –     |
| alerts, incidents (read)         | yes   | yes     | yes              | –        | yes     | yes   |
| incidents (change, comment)      | yes   | yes     | yes              | –        | –       | –     |
| suppressions (read)              | yes   | yes     | yes              | –        | yes     | yes   |
| suppressions (change)            | yes   | yes     | –                | –        | –       | –     |
| playbook library, runs (read)    | yes   | yes     | yes              | yes      | yes     | yes   |
| playbook runs (start)            | yes   | yes     | yes              | –        | –       | –     |
| playbook tasks (act)             | yes   | yes     | yes              | yes      | yes     | –     |
| inventory (read)                 | yes   | yes     | yes              | yes      | yes     | –     |
| inventory assets (change)        | yes   | –       | –                | own units| –       | –     |
| inventory (other changes, import)| yes   | –       | –                | –        | –       | –     |
| compliance (read)                | yes   | yes     | yes              | yes      | yes     | –     |
| compliance (attest, record, run) | yes   | –       | –                | –        | yes     | –     |
| users, tokens                    | yes   | –       | –                | –        | –       | –     |
| /metrics                         | yes   | –       | –                | yes      | –       | –     |

Reasons: sysadmins install collectors and fix log gaps (sources, rules, metrics), they do not
triage; managers and the drill team read and score but do not change the SOC's work; a
playbook task has an owner role, so sysadmins (blocking, recovery) and managers (approvals,
reports) act on their tasks and read the runs of their units;
what the SOC sees (rules, suppressions) is changed only by provincial staff; managers answer
for their systems' compliance (attest, record drills and reports), everyone who fixes or
watches it reads it, the drill team scores the SOC rather than the systems. Provider analysts
work incidents 24/7 but never see state-secret systems (`Scope`). What each role sees is
further limited to its units by `AgencyScope`.

A route applies its group with `Depends(require_roles(*GROUP))` (soc_api/deps.py), on the
router (`dependencies=[...]`) or on the operation; `tests/soc_api/test_access_matrix.py` holds
the same table as data and checks every route of the application against it.
"""

from __future__ import annotations

ALL_ROLES = ("admin", "analyst", "provider-analyst", "sysadmin", "manager", "drill")
SOC_READ = ("admin", "analyst", "provider-analyst", "manager", "drill")
SOC_WORK = ("admin", "analyst", "provider-analyst")
PROVINCIAL_EDIT = ("admin", "analyst")
OPERATIONS = ("admin", "sysadmin")
PLAYBOOK_TASKS = ("admin", "analyst", "provider-analyst", "sysadmin", "manager")
ADMIN = ("admin",)
INVENTORY_READ = ("admin", "analyst", "provider-analyst", "sysadmin", "manager")
INVENTORY_ASSETS = ("admin", "sysadmin")
COMPLIANCE_READ = ("admin", "manager", "analyst", "provider-analyst", "sysadmin")
COMPLIANCE_EDIT = ("admin", "manager")
