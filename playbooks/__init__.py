"""Response playbooks (YAML library) and the engine that runs them.

- `playbooks/library/*.yml`: fragments (family bases A/B/C, normal and serious paths,
  reporting duties) and one playbook per incident group with both paths, validated
  against `schema.json` by `playbooks.library.load_library`.
- `playbooks/regimes.yml`: reporting duties (form, recipients, deadline) per regime,
  deadlines read from the shared compliance catalogue (`playbooks.regimes`).
- `playbooks.engine`: runs and tasks in SQL (`playbooks.models`, migration 0005), task
  transitions, actions through `playbooks.adapters` (dry-run by default), report documents
  (`playbooks.reports`), SLA breach alerts (`SlaWatcher`), `attach()` to the incidents hook.
"""
