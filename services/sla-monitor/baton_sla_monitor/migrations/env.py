from baton_shared.migrations_env import run
from baton_sla_monitor.tables import Base

run(Base.metadata)
