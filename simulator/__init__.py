"""wasim: an offline simulator of Kaleyra's WhatsApp callbacks."""

from __future__ import annotations

__version__ = "0.1.0"

# The public API is imported lazily: `import simulator` (and so `wasim --help`) stays fast,
# while `from simulator import render_callbacks` works as usual.
_EXPORTS = {
    "WasimError": "simulator.errors",
    "ExitCode": "simulator.errors",
    "Wamid": "simulator.wamid",
    "InvalidWamid": "simulator.wamid",
    "encode_wamid": "simulator.wamid",
    "decode_wamid": "simulator.wamid",
    "to_wire": "simulator.wire",
    "make_faker": "simulator.providers",
    "WhatsAppProvider": "simulator.providers",
    "TapOptions": "simulator.taps",
    "TapFactory": "simulator.taps",
    "RenderOptions": "simulator.render",
    "Rendered": "simulator.render",
    "CallbackTemplate": "simulator.render",
    "render_callbacks": "simulator.render",
    "validate_callback": "simulator.validate",
    "Problem": "simulator.validate",
    "Event": "simulator.delivery",
    "Deliverer": "simulator.delivery",
    "DeliveryOptions": "simulator.delivery",
    "DeliveryResult": "simulator.delivery",
    "Attempt": "simulator.delivery",
    "url_target": "simulator.delivery",
    "app_target": "simulator.delivery",
    "HistoryWriter": "simulator.history",
    "read_history": "simulator.history",
    "Receiver": "simulator.receiver",
    "Simulator": "simulator.testing",
    "Callback": "simulator.testing",
    "Delivery": "simulator.testing",
    "ReceiverOptions": "simulator.receiver",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'simulator' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
