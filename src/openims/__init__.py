"""openims: a self-hostable image management service, wire-compatible with Huawei Cloud IMS."""

__version__ = "0.1.0"
