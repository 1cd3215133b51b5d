"""Response playbooks (YAML library) and the engine that runs them."""
