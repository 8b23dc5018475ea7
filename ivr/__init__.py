"""The phone tree: flow files, a pure engine, and a caller simulator speaking the public API."""

from ivr.flow import Flow, FlowError, default_flow_path, load_flow

__all__ = ["Flow", "FlowError", "default_flow_path", "load_flow"]
