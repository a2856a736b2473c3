from .backbones import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .postprocess import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
from .text import *  # noqa: F401,F403
