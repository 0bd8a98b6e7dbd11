import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    """The tenant fixtures create eight users; the production hasher takes ~0.4 s for each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
