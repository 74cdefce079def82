import java.io.IOException;
import java.net.URI;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.harness.Neo4j;
import org.neo4j.harness.Neo4jBuilders;

/**
 * Runs a real Neo4j server in this JVM with only the Bolt connector, on 127.0.0.1:PORT.
 *
 * Usage: java -cp ... Launcher PORT WORKDIR
 * Prints "ragops-neo4j ready bolt://127.0.0.1:PORT" once Bolt accepts connections and runs
 * until the process is terminated (SIGTERM shuts the database down cleanly).
 */
public final class Launcher {
    private Launcher() {}

    public static void main(String[] args) throws IOException, InterruptedException {
        if (args.length != 2) {
            System.err.println("usage: Launcher PORT WORKDIR");
            System.exit(2);
        }
        int port = Integer.parseInt(args[0]);
        Path workDir = Path.of(args[1]);
        Neo4j server = Neo4jBuilders.newInProcessBuilder(workDir)
                .withDisabledServer()
                .withConfig(BoltConnector.enabled, true)
                .withConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .withConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", port))
                .withConfig(HttpConnector.enabled, false)
                .withConfig(HttpsConnector.enabled, false)
                .withConfig(GraphDatabaseSettings.auth_enabled, false)
                .build();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            stopped.countDown();
        }));
        URI bolt = server.boltURI();
        System.out.println("ragops-neo4j ready " + bolt);
        System.out.flush();
        stopped.await();
    }
}
