"""The fakes run on the loopback server the demo's scripted model runs on."""

from bot.loopback import LoopbackServer

__all__ = ["LoopbackServer"]
