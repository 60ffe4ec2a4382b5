"""What the cluster is doing, gathered from its processes: the layer under
``nebula.util.state``, the ``nebula list|summary|logs|memory|timeline|stack`` commands and
the dashboard's JSON API, so all three show the same records."""
