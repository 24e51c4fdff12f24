from baton_shared.migrations_env import run
from baton_sla_monitor.reporting.tables import Base

run(Base.metadata)
