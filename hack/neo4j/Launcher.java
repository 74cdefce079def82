import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.harness.Neo4j;
import org.neo4j.harness.Neo4jBuilders;

/**
 * Runs a real Neo4j server in this JVM with only the Bolt connector, on HOST:PORT.
 *
 * Usage: java -cp ... Launcher PORT WORKDIR [HOST]   (HOST defaults to 127.0.0.1)
 *
 * The databases live in WORKDIR/data, so a server started again on the same WORKDIR finds
 * its data. NEO4J_AUTH, as the neo4j image reads it: unset or "none" turns authentication
 * off; "neo4j/PASSWORD" turns it on with that password for user neo4j.
 * Prints "ragops-neo4j ready bolt://HOST:PORT" once Bolt accepts connections and runs
 * until the process is terminated (SIGTERM shuts the database down cleanly).
 */
public final class Launcher {
    private Launcher() {}

    public static void main(String[] args) throws IOException, InterruptedException {
        if (args.length < 2 || args.length > 3) {
            System.err.println("usage: Launcher PORT WORKDIR [HOST]");
            System.exit(2);
        }
        int port = Integer.parseInt(args[0]);
        Path workDir = Path.of(args[1]);
        String host = args.length == 3 ? args[2] : "127.0.0.1";
        String auth = System.getenv().getOrDefault("NEO4J_AUTH", "none");
        boolean authOn = !auth.equals("none") && !auth.isEmpty();
        String advertised = host.equals("0.0.0.0")
                ? System.getenv().getOrDefault("HOSTNAME", "localhost") : host;
        Path marker = workDir.resolve("data").resolve(".initial-password-set");
        if (authOn && !Files.exists(marker)) {
            // As the image does: the password is set before Bolt accepts anyone, and only on
            // the first start (a restarted server keeps the password it has).
            Neo4j setup = Neo4jBuilders.newInProcessBuilder(workDir)
                    .withDisabledServer()
                    .withConfig(GraphDatabaseSettings.data_directory, workDir.resolve("data"))
                    .withConfig(BoltConnector.enabled, false)
                    .withConfig(HttpConnector.enabled, false)
                    .withConfig(HttpsConnector.enabled, false)
                    .withConfig(GraphDatabaseSettings.auth_enabled, true)
                    .build();
            String password = auth.substring(auth.indexOf('/') + 1);
            setup.databaseManagementService().database("system").executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
                    Map.of("password", password));
            setup.close();
            Files.createFile(marker);
        }
        Neo4j server = Neo4jBuilders.newInProcessBuilder(workDir)
                .withDisabledServer()
                .withConfig(GraphDatabaseSettings.data_directory, workDir.resolve("data"))
                .withConfig(BoltConnector.enabled, true)
                .withConfig(BoltConnector.listen_address, new SocketAddress(host, port))
                .withConfig(BoltConnector.advertised_address, new SocketAddress(advertised, port))
                .withConfig(HttpConnector.enabled, false)
                .withConfig(HttpsConnector.enabled, false)
                .withConfig(GraphDatabaseSettings.auth_enabled, authOn)
                .build();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            stopped.countDown();
        }));
        System.out.println("ragops-neo4j ready bolt://" + host + ":" + port);
        System.out.flush();
        stopped.await();
    }
}
