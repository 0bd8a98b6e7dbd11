from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib import admin

        from apps.accounts.login import ThrottledAdminAuthenticationForm

        # Every sign-in goes through the admin's login page (the console redirects there).
        admin.site.login_form = ThrottledAdminAuthenticationForm
