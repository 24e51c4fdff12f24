from baton_shared.migrations_env import run

from baton_router.tables import Base

run(Base.metadata)
