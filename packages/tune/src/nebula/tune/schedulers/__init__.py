"""Trial schedulers: FIFO, ASHA, HyperBand, the median stopping rule and PBT.

All implement :class:`TrialScheduler`; each is registered by name through the
``nebula_register_tune_schedulers`` hook, so ``TuneConfig(scheduler="asha")`` finds it, as
it finds a third party's.
"""

from __future__ import annotations

from nebula.tune.schedulers._asha import ASHAScheduler, AsyncHyperBandScheduler
from nebula.tune.schedulers._base import FIFOScheduler, SchedulerContext, TrialScheduler
from nebula.tune.schedulers._hyperband import HyperBandScheduler
from nebula.tune.schedulers._median import MedianStoppingRule
from nebula.tune.schedulers._pbt import PopulationBasedTraining

__all__ = [
    "ASHAScheduler",
    "AsyncHyperBandScheduler",
    "FIFOScheduler",
    "HyperBandScheduler",
    "MedianStoppingRule",
    "PopulationBasedTraining",
    "SchedulerContext",
    "TrialScheduler",
]
