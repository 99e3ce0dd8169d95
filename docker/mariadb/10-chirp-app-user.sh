# shellcheck shell=bash
# Sourced (not executed: keep this file non-executable) by the official
# mariadb image's entrypoint on a member's first start, when its data volume is
# empty. docker_process_sql and docker_sql_escape_string_literal come from that
# entrypoint.
#
# Creates the application account the services connect with (their
# MYSQL_URL_RS0/RS1 carry it; only the migrate job uses root), with the same
# grants `npm start` gives it: row access to the shard databases, which are all
# named chirp_<shard> (shard-config/local.json). The grant is on the name
# pattern, so it holds for databases the migrate job creates later.
#
# Not binlogged, and run on every member: replicas stay free of local GTIDs,
# which gtid_strict_mode would reject at a failover.
if [ -n "${MYSQL_APP_USER:-}" ]; then
	mysql_note "Creating Chirp application user ${MYSQL_APP_USER}"
	chirp_app_user=$(docker_sql_escape_string_literal "${MYSQL_APP_USER}")
	chirp_app_password=$(docker_sql_escape_string_literal "${MYSQL_APP_PASSWORD:-}")
	docker_process_sql --binary-mode <<-EOSQL
		SET SESSION sql_log_bin = 0;
		CREATE USER IF NOT EXISTS '${chirp_app_user}'@'%' IDENTIFIED BY '${chirp_app_password}';
		GRANT SELECT, INSERT, UPDATE, DELETE ON \`chirp\\_%\`.* TO '${chirp_app_user}'@'%';
	EOSQL
	unset chirp_app_user chirp_app_password
fi
