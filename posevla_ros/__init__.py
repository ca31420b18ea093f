"""ROS 2 adapters around posevla_core: nodes, conversions, transforms, safety, backends.

The generated message classes (``posevla_ros.msg``) exist only in the *installed* copy of
this package (colcon or ``make setup`` put them next to the typesupport libraries).
When Python imports this source tree instead (tests, ``python -m`` from a checkout),
``extend_path`` lets the ``msg`` subpackage resolve from the installed copy while every
hand-written module still comes from the source tree, which is first on ``sys.path``.
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
