"""A loopback vendor sandbox: Alibaba Cloud VOD, ZEGO and Huawei Cloud VOD deletion APIs as their
documents describe them (signatures, codes, batch and rate limits), with faults on demand and a
record of every call and every deletion. For integration tests, the demo and benchmarks.

    sandbox = Sandbox(SandboxConfig.from_settings(settings)).start()
    sandbox.endpoint("zego")   # http://127.0.0.1:PORT/zego
    sandbox.seed(seed); ...; sandbox.stats(); sandbox.stop()
"""

from worker.sandbox.config import AliyunCredential, HuaweiCredential, SandboxConfig, ZegoCredential
from worker.sandbox.faults import FaultSpec
from worker.sandbox.generate import generate_media
from worker.sandbox.server import DEFAULT_PORT, Sandbox, load_seed, serve_forever
from worker.sandbox.windows import DEFAULT_LIMITS, Limit, max_in_window

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_PORT",
    "AliyunCredential",
    "FaultSpec",
    "HuaweiCredential",
    "Limit",
    "Sandbox",
    "SandboxConfig",
    "ZegoCredential",
    "generate_media",
    "load_seed",
    "max_in_window",
    "serve_forever",
]
