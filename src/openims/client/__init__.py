"""Python client for openims (and Huawei Cloud IMS/IAM-compatible endpoints): sessions and token cache."""

from openims.client.session import ApiError, Credentials, Session
from openims.client.token_cache import CachedToken, CacheKey, TokenCache

__all__ = ["ApiError", "CacheKey", "CachedToken", "Credentials", "Session", "TokenCache"]
