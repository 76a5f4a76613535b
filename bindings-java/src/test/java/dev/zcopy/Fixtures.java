package dev.zcopy;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/** Real files, loopback sockets and pipes for the tests; no mocks. */
final class Fixtures {
    static final ExecutorService POOL = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "zcopy-test-peer");
        t.setDaemon(true);
        return t;
    });

    private Fixtures() {
    }

    /** Deterministic pseudo-random bytes. */
    static byte[] bytes(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    static Path file(Path dir, String name, byte[] content) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, content);
        return p;
    }

    static FileChannel read(Path p) throws IOException {
        return FileChannel.open(p, StandardOpenOption.READ);
    }

    static FileChannel readWrite(Path p) throws IOException {
        return FileChannel.open(p, StandardOpenOption.READ, StandardOpenOption.WRITE, StandardOpenOption.CREATE);
    }

    /** A connected loopback TCP pair: [0] our end, [1] the peer. Both blocking. */
    static SocketChannel[] tcpPair() throws IOException {
        try (ServerSocketChannel server = ServerSocketChannel.open()) {
            server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            SocketChannel client = SocketChannel.open(server.getLocalAddress());
            SocketChannel accepted = server.accept();
            return new SocketChannel[] {client, accepted};
        }
    }

    /** Reads a channel to its end on another thread. */
    static Future<byte[]> drain(ReadableByteChannel ch) {
        return POOL.submit(() -> readAll(ch));
    }

    static byte[] readAll(ReadableByteChannel ch) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteBuffer buf = ByteBuffer.allocate(1 << 16);
        while (ch.read(buf) >= 0) {
            out.write(buf.array(), 0, buf.position());
            buf.clear();
        }
        return out.toByteArray();
    }

    /** Reads exactly n bytes (or to the end) from a channel. */
    static byte[] readN(ReadableByteChannel ch, int n) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(n);
        while (buf.hasRemaining() && ch.read(buf) >= 0) {
            // keep reading
        }
        byte[] b = new byte[buf.position()];
        buf.flip();
        buf.get(b);
        return b;
    }

    /** Counts and discards a channel's bytes to its end on another thread. */
    static Future<Long> count(ReadableByteChannel ch) {
        return POOL.submit(() -> {
            ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
            long n = 0;
            int r;
            while ((r = ch.read(buf)) >= 0) {
                n += r;
                buf.clear();
            }
            return n;
        });
    }

    /** Writes bytes then shuts the output on another thread. */
    static CompletableFuture<Void> send(SocketChannel ch, byte[] data) {
        return CompletableFuture.runAsync(() -> {
            try {
                ch.write(ByteBuffer.wrap(data));
                ch.shutdownOutput();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }, POOL);
    }

    static <T> T get(Future<T> f) throws Exception {
        return f.get(60, TimeUnit.SECONDS);
    }

    static void assertFile(byte[] expected, Path p) throws IOException {
        assertArrayEquals(expected, Files.readAllBytes(p));
    }

    static byte[] slice(byte[] b, long from, long to) {
        int f = (int) Math.max(0, Math.min(from, b.length));
        int t = (int) Math.max(f, Math.min(to, b.length));
        byte[] out = new byte[t - f];
        System.arraycopy(b, f, out, 0, t - f);
        return out;
    }

    static int jdk() {
        return Runtime.version().feature();
    }

    static void closeAll(AutoCloseable... cs) {
        for (AutoCloseable c : cs) {
            try {
                if (c != null) {
                    c.close();
                }
            } catch (Exception e) {
                // best effort in test cleanup
            }
        }
    }
}
