from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("rights.web.urls")),
]

# "Page not found" in the site's words and under its Content Security Policy.
handler404 = "rights.web.errors.page_not_found"
