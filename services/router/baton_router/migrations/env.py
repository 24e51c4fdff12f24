from baton_router.tables import Base
from baton_shared.migrations_env import run

run(Base.metadata)
