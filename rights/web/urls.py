from django.urls import path

from rights.web import confirmation, request_form, status, transparency, views

app_name = "rights"

urlpatterns = [
    path("", views.front_page, name="front"),
    path("a/<slug:slug>/", views.content_page, name="content"),
    # The owner's door.
    path("request/", request_form.request_form, name="request"),
    path("request/sent/", request_form.request_sent, name="request_sent"),
    path("confirm/<str:token>/", confirmation.confirm, name="confirm"),
    # The requester's page and what can be done from it. "Lost your link?" comes first: no
    # status token is ever "sent" (every token holds a signature after a colon).
    path("status/", status.status_lost, name="status_lost"),
    path("status/sent/", status.status_lost_sent, name="status_lost_sent"),
    path("status/<str:token>/", status.status_page, name="status"),
    path("status/<str:token>/live.json", status.status_live, name="status_live"),
    path("status/<str:token>/withdraw/", status.withdraw, name="withdraw"),
    path("status/<str:token>/appeal/", status.appeal, name="appeal"),
    # The public transparency report (aggregates only) and its figures.
    path("transparency/", transparency.report_page, name="transparency"),
    path("transparency/report.csv", transparency.report_csv, name="transparency_csv"),
    path("transparency/report.json", transparency.report_json, name="transparency_json"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path(".well-known/rights-evidence-key", views.evidence_key, name="evidence_key"),
]
