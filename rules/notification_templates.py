"""MediaNest's notification templates (Go text/template, loaded by Alertmanager from
`templates/medianest.tmpl`: stack.layout.ALERTMANAGER_TEMPLATE): one title and one body for
every integration, built from the alerts' house annotations (a static summary, a templated
description, a runbook URL).

This is the one generated file that is text rather than dumped data: it *is* the template
language. `amtool check-config` parses it and the tests render it with `amtool template render`.
"""

from __future__ import annotations

# Names of the definitions below, as the receivers reference them.
TITLE = "medianest.title"
TEXT = "medianest.text"

TEMPLATE = """\
{{/* Title: status, how many fire, the alert and its service, the shared summary. */}}
{{ define "medianest.title" -}}
[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] \
{{ .CommonLabels.alertname }}{{ with .CommonLabels.service }} ({{ . }}){{ end }}\
{{ with .CommonAnnotations.summary }}: {{ . }}{{ end }}
{{- end }}

{{/* Body: every alert with its severity, description, runbook and own labels. */}}
{{ define "medianest.text" -}}
{{ range .Alerts.Firing -}}
{{ template "medianest.alert" . }}
{{ end -}}
{{ if .Alerts.Resolved }}Resolved:
{{ range .Alerts.Resolved -}}
{{ template "medianest.alert" . }}
{{ end -}}
{{ end -}}
{{- end }}

{{ define "medianest.alert" -}}
[{{ .Labels.severity }}] {{ with .Annotations.description }}{{ . }}{{ else }}\
{{ .Annotations.summary }}{{ end }}
{{ with .Annotations.runbook_url }}Runbook: {{ . }}
{{ end -}}
Labels:{{ range .Labels.SortedPairs }}{{ if ne .Name "alertname" }} {{ .Name }}={{ .Value }}{{ end }}{{ end }}
{{- end }}
"""
