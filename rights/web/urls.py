from django.urls import path

from rights.web import views

app_name = "rights"

urlpatterns = [
    path("", views.front_page, name="front"),
    path("a/<slug:slug>/", views.content_page, name="content"),
    path("status/<str:token>/", views.status_page, name="status"),
    path("healthz", views.healthz, name="healthz"),
]
