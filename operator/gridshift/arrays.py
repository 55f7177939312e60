"""The numpy array types the numeric modules annotate with (planner, simulation), named once.

Float64 and int64 throughout: the planner's capacities and costs and the simulation's minute
series are float64, its counts and indices int64. Below every other module (with `modes`), so any
layer may import it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
