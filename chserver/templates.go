package chserver

import "text/template"

// configTmpl is the server configuration. Every key here is understood by
// ClickHouse 18.16 as well as by current releases; absent sections
// (interserver_http_port, remote_servers, zookeeper, query_log, graphite)
// are simply not started.
var configTmpl = template.Must(template.New("config.xml").Parse(`<?xml version="1.0"?>
<!-- Written by tally (chserver) at every start; edits are overwritten. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>{{.Dir}}/log/clickhouse-server.log</log>
        <errorlog>{{.Dir}}/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{{.TCPPort}}</tcp_port>
    <http_port>{{.HTTPPort}}</http_port>
    <timezone>UTC</timezone>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>{{.Dir}}/data/</path>
    <tmp_path>{{.Dir}}/tmp/</tmp_path>
    <user_files_path>{{.Dir}}/user_files/</user_files_path>
    <format_schema_path>{{.Dir}}/format_schemas/</format_schema_path>
    <users_config>{{.Dir}}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
    <query_log>
        <database>system</database>
        <table>query_log</table>
        <partition_by>toYYYYMM(event_date)</partition_by>
        <flush_interval_milliseconds>7500</flush_interval_milliseconds>
    </query_log>
</yandex>
`))

// usersTmpl defines the passwordless "default" user (listening on 127.0.0.1
// only) and the read-only analyst user with query limits.
var usersTmpl = template.Must(template.New("users.xml").Parse(`<?xml version="1.0"?>
<!-- Written by tally (chserver) at every start; edits are overwritten. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>8000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
            <!-- Idle native connections check for shutdown this often
                 (seconds); the default 10 makes every SIGTERM with a
                 client connected take 10 s. -->
            <poll_interval>1</poll_interval>
        </default>
        <readonly>
            <readonly>1</readonly>
            <max_execution_time>60</max_execution_time>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
        </readonly>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <{{.AnalystUser}}>
            {{if .AnalystPassSet}}<password_sha256_hex>{{.AnalystSHA256}}</password_sha256_hex>{{else}}<password></password>{{end}}
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>readonly</profile>
            <quota>default</quota>
        </{{.AnalystUser}}>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
`))
