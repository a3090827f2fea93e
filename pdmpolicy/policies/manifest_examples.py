"""Example rendered manifests for the `manifest-*` policies' documentation.

`MIGRATIONS_JOB` is the GitLab chart's migrations Job as `helm template` renders it for
staging (charts/gitlab/charts/migrations/templates/_jobspec.yaml, trimmed to what matters),
with the safe values; each failing example is it with one change. Example files named
`<env>.manifest.yaml` are the rendered manifests of `<env>` (`pdmpolicy manifests`).
"""

from __future__ import annotations

MIGRATIONS_JOB = """\
# Source: gitlab/charts/gitlab/charts/migrations/templates/job.yaml
apiVersion: batch/v1
kind: Job
metadata:
  name: gitlab-migrations-5d2c1f0
  namespace: gitlab
  labels:
    app: migrations
    chart: migrations-8.6.1
    release: gitlab
    heritage: Helm
spec:
  activeDeadlineSeconds: 36000
  backoffLimit: 0
  template:
    metadata:
      labels:
        app: migrations
        release: gitlab
    spec:
      restartPolicy: Never
      containers:
        - name: migrations
          image: registry.gitlab.com/gitlab-org/build/cng/gitlab-toolbox-ee:v17.6.1
          args:
            - /scripts/wait-for-deps
            - /scripts/db-migrate
          env:
            - name: CONFIG_TEMPLATE_DIRECTORY
              value: /var/opt/gitlab/templates
            - name: CONFIG_DIRECTORY
              value: /srv/gitlab/config
            - name: BYPASS_SCHEMA_VERSION
              value: "true"
"""

CNY_CHART_INFO = """\
# Source: gitlab/templates/chart-info.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: gitlab-cny-gitlab-chart-info
  namespace: gitlab-cny
data:
  gitlabVersion: "17.6.1"
  gitlabChartVersion: "8.6.1"
"""
"""What the canary release renders besides its workloads when its migrations are disabled."""

CNY_MIGRATIONS_JOB = (
    MIGRATIONS_JOB.replace("gitlab-migrations-5d2c1f0", "gitlab-cny-migrations-9be41a7")
    .replace("namespace: gitlab\n", "namespace: gitlab-cny\n")
    .replace("release: gitlab\n", "release: gitlab-cny\n")
)
"""The same Job rendered by the canary release (`gitlab-cny`), which shares staging's
database."""
