from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("rights.api.urls")),
    path("", include("rights.web.urls")),
]

# What went wrong, in the site's words and under its Content Security Policy; none of these
# reads the request's body again (rights.web.errors).
handler400 = "rights.web.errors.bad_request"
handler404 = "rights.web.errors.page_not_found"
handler500 = "rights.web.errors.server_error"
