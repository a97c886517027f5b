#!/usr/bin/env python3
"""Writes contrib/grafana-samsa.json: the Grafana dashboard on the names of
docs/metrics.md (the JMX exporter's Kafka names), one panel per concern.
Edit the panels here and run: python3 contrib/gen_grafana.py"""
import json
import os
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
panels = []
pid = [0]
def panel(title, exprs, x, y, w=12, h=8, kind="timeseries", unit="short", legend=None):
    pid[0] += 1
    p = {"id": pid[0], "type": kind, "title": title, "datasource": DS,
         "gridPos": {"x": x, "y": y, "w": w, "h": h},
         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
         "targets": [{"datasource": DS, "expr": e, "legendFormat": l, "refId": chr(65 + i)}
                     for i, (e, l) in enumerate(exprs)]}
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"}
        p["fieldConfig"]["defaults"]["thresholds"] = {"mode": "absolute", "steps": [
            {"color": "green", "value": None}, {"color": "red", "value": 1}]}
    panels.append(p)
I = 'instance=~"$instance"'
T = 'topic=~"$topic"'
def row(title, y):
    pid[0] += 1
    panels.append({"id": pid[0], "type": "row", "title": title, "collapsed": False,
                   "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})
row("Cluster health", 0)
panel("Under-replicated partitions", [(f"sum(kafka_server_replicamanager_underreplicatedpartitions{{{I}}})", "")], 0, 1, 6, 4, "stat")
panel("Under min ISR", [(f"sum(kafka_server_replicamanager_underminisrpartitioncount{{{I}}})", "")], 6, 1, 6, 4, "stat")
panel("Offline partitions", [(f"sum(kafka_controller_kafkacontroller_offlinepartitionscount{{{I}}})", "")], 12, 1, 6, 4, "stat")
p = panel("Active controllers", [(f"sum(kafka_controller_kafkacontroller_activecontrollercount{{{I}}})", "")], 18, 1, 6, 4, "stat")
panels[-1]["fieldConfig"]["defaults"]["thresholds"] = {"mode": "absolute", "steps": [
    {"color": "red", "value": None}, {"color": "green", "value": 1}, {"color": "red", "value": 2}]}
panel("Partitions and leaders per node", [(f"kafka_server_replicamanager_partitioncount{{{I}}}", "partitions {{instance}}"),
      (f"kafka_server_replicamanager_leadercount{{{I}}}", "leaders {{instance}}")], 0, 5)
panel("Connections", [(f"kafka_server_socket_server_metrics_connection_count{{{I}}}", "{{instance}} {{listener}}")], 12, 5, 6)
panel("Event loop busy", [(f"1 - rate(samsa_loop_idle_seconds_total{{{I}}}[1m])", "{{instance}}")], 18, 5, 6, unit="percentunit")
row("Throughput", 13)
panel("Messages in /s by topic", [(f'sum by (topic) (rate(kafka_server_brokertopicmetrics_messagesin_total{{{I},{T}}}[1m]))', "{{topic}}")], 0, 14)
panel("Bytes in /s by topic", [(f'sum by (topic) (rate(kafka_server_brokertopicmetrics_bytesin_total{{{I},{T}}}[1m]))', "{{topic}}")], 12, 14, unit="Bps")
panel("Bytes out /s by topic", [(f'sum by (topic) (rate(kafka_server_brokertopicmetrics_bytesout_total{{{I},{T}}}[1m]))', "{{topic}}")], 0, 22, unit="Bps")
panel("Failed produce / fetch /s", [(f'sum(rate(kafka_server_brokertopicmetrics_failedproducerequests_total{{{I},topic=""}}[1m]))', "failed produce"),
      (f'sum(rate(kafka_server_brokertopicmetrics_failedfetchrequests_total{{{I},topic=""}}[1m]))', "failed fetch")], 12, 22)
row("Requests", 30)
panel("Requests /s by API", [(f"sum by (request) (rate(kafka_network_requestmetrics_requests_total{{{I},request!~\"FetchConsumer|FetchFollower\"}}[1m]))", "{{request}}")], 0, 31)
panel("Errors /s by API and error", [(f'sum by (request, error) (rate(kafka_network_requestmetrics_errors_total{{{I},error!="NONE"}}[1m]))', "{{request}} {{error}}")], 12, 31)
panel("Total time p99 (ms)", [(f'max by (request) (kafka_network_requestmetrics_totaltimems{{{I},request=~"Produce|FetchConsumer|FetchFollower|Metadata|OffsetCommit",quantile="0.99"}})', "{{request}}")], 0, 39, unit="ms")
panel("Total time p50 (ms)", [(f'max by (request) (kafka_network_requestmetrics_totaltimems{{{I},request=~"Produce|FetchConsumer|FetchFollower|Metadata|OffsetCommit",quantile="0.50"}})', "{{request}}")], 12, 39, unit="ms")
panel("Produce time p99 split (ms)", [(f'max(kafka_network_requestmetrics_localtimems{{{I},request="Produce",quantile="0.99"}})', "local"),
      (f'max(kafka_network_requestmetrics_remotetimems{{{I},request="Produce",quantile="0.99"}})', "remote (acks=all)"),
      (f'max(kafka_network_requestmetrics_responsesendtimems{{{I},request="Produce",quantile="0.99"}})', "send")], 0, 47, unit="ms")
row("Logs and consumers", 55)
panel("Log size by topic", [(f'sum by (topic) (kafka_log_log_size{{{I},{T}}})', "{{topic}}")], 0, 56, unit="bytes")
panel("Consumer lag by group and topic", [(f'sum by (consumergroup, topic) (kafka_consumergroup_lag{{{I},{T}}})', "{{consumergroup}} {{topic}}")], 12, 56)
panel("Groups by state", [(f"sum(kafka_coordinator_group_groupmetadatamanager_numgroupsstable{{{I}}})", "Stable"),
      (f"sum(kafka_coordinator_group_groupmetadatamanager_numgroupsempty{{{I}}})", "Empty"),
      (f"sum(kafka_coordinator_group_groupmetadatamanager_numgroupspreparingrebalance{{{I}}})", "PreparingRebalance"),
      (f"sum(kafka_coordinator_group_groupmetadatamanager_numgroupscompletingrebalance{{{I}}})", "CompletingRebalance"),
      (f"sum(kafka_coordinator_group_groupmetadatamanager_numgroupsdead{{{I}}})", "Dead")], 0, 64)
panel("Log end offset growth /s by topic", [(f'sum by (topic) (rate(kafka_log_log_logendoffset{{{I},{T}}}[1m]))', "{{topic}}")], 12, 64)
row("Process", 72)
panel("Resident memory", [(f"process_resident_memory_bytes{{{I}}}", "{{instance}}")], 0, 73, 8, unit="bytes")
panel("CPU", [(f"rate(process_cpu_seconds_total{{{I}}}[1m])", "{{instance}}")], 8, 73, 8, unit="percentunit")
panel("Open file descriptors", [(f"process_open_fds{{{I}}}", "open {{instance}}"), (f"process_max_fds{{{I}}}", "max {{instance}}")], 16, 73, 8)

dash = {
    "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource", "pluginId": "prometheus",
                  "pluginName": "Prometheus"}],
    "__requires": [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "9.0.0"},
                   {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}],
    "title": "Samsa (Kafka) broker", "uid": "samsa-broker", "tags": ["samsa", "kafka"], "timezone": "browser",
    "schemaVersion": 36, "version": 1, "refresh": "10s", "time": {"from": "now-1h", "to": "now"},
    "description": "Samsa's metrics.listener endpoint (docs/metrics.md); the names are the JMX exporter's Kafka names, so it also works for Kafka with kafka-2_0_0.yml",
    "templating": {"list": [
        {"name": "instance", "type": "query", "datasource": DS, "label": "node",
         "query": {"query": "label_values(kafka_server_replicamanager_partitioncount, instance)", "refId": "A"},
         "definition": "label_values(kafka_server_replicamanager_partitioncount, instance)",
         "includeAll": True, "multi": True, "current": {"text": "All", "value": "$__all"}, "refresh": 2, "allValue": ".*"},
        {"name": "topic", "type": "query", "datasource": DS, "label": "topic",
         "query": {"query": "label_values(kafka_log_log_size, topic)", "refId": "B"},
         "definition": "label_values(kafka_log_log_size, topic)",
         "includeAll": True, "multi": True, "current": {"text": "All", "value": "$__all"}, "refresh": 2, "allValue": ".+"}]},
    "annotations": {"list": []},
    "panels": panels,
}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "grafana-samsa.json"), "w") as f:
    json.dump(dash, f, indent=2)
    f.write("\n")
