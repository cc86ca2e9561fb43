/**
 * Every pinned version of the local services, in one place. Changing a version (or the extra
 * dependencies below) changes the cache folder / marker, so the next `up` fetches it again.
 */
export const VERSIONS = {
  /** org.apache.cassandra:cassandra-all. Only 5.0 runs on JDK 17 (4.x does not). */
  cassandra: '5.0.8',
  /**
   * org.apache.kafka:kafka_2.13. 4.4.0 is the newest served; a produce + consume round-trip with
   * @platformatic/kafka 2.12 (which documents support up to 4.2) was verified against it.
   */
  kafka: '4.4.0',
  /** kafka_2.13 ships log4j-core but no SLF4J binding: without one every SLF4J logger is silent. */
  kafkaLog4j: '2.25.5',
  kafkaSlf4j: '2.0.17',
  /** org.elasticmq:elasticmq-server_2.13. */
  elasticmq: '1.7.1',
  /** org.keycloak:keycloak-quarkus-dist (zip); 26.4–26.7 are served. Schema verified with 26.4.7. */
  keycloak: '26.4.7',
  /**
   * org.opensearch:opensearch (server jar; Central has no distribution tarball). 2.19 runs on Java 17
   * to 23: it needs the security manager, which Java 24 removed.
   */
  opensearch: '2.19.4',
  /** org.opensearch:opensearch-plugin-classloader: 2.19.2–2.19.4 are not on Central; 2.19.1 works with 2.19.4. */
  opensearchPluginClassloader: '2.19.1',
  /** log4j-core is optional in the opensearch pom but the server needs it; the version its pom names. */
  opensearchLog4j: '2.21.0',
  /** The plugin that copies a runtime classpath out of the local Maven repository. */
  mavenDependencyPlugin: '3.11.0',
} as const;
