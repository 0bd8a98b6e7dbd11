from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person who signs in: a tenant's owner, admin or agent (customers never sign in here)."""

    email = models.EmailField("email address", unique=True)
    display_name = models.CharField(max_length=150, blank=True)

    @property
    def name(self) -> str:
        return self.display_name or self.get_full_name() or self.username
