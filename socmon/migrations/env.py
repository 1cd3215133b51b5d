"""Alembic environment: runs migrations on the connection socmon hands over.

`target_metadata` carries socmon's naming convention (socmon.db.NAMING) into the operations,
so constraints a migration leaves unnamed get the same names on PostgreSQL as the models
declare (`uq_users_name`, `fk_api_tokens_user_id_users`, `pk_users`) instead of the
server's own (`users_name_key`); later migrations can then drop or alter them by name.
"""

from __future__ import annotations

from alembic import context

from socmon.db import Base, make_engine

config = context.config
connection = config.attributes.get("connection")
options = {"render_as_batch": True, "target_metadata": Base.metadata}

if connection is not None:
    context.configure(connection=connection, **options)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, **options)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
