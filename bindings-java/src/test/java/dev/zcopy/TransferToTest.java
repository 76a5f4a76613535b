package dev.zcopy;

import static dev.zcopy.Fixtures.bytes;
import static dev.zcopy.Fixtures.get;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.FileOutputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.FileChannel;
import java.nio.channels.Pipe;
import java.nio.channels.SocketChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** ZeroCopy.transferTo against FileChannel.transferTo on the same inputs. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TransferToTest {
    static final int SIZE = 100_003;
    static final byte[] DATA = bytes(SIZE, 1);

    @TempDir
    Path dir;

    static Stream<Arguments> ranges() {
        List<Arguments> out = new ArrayList<>();
        long[] positions = {0, 1, 4096, SIZE - 1, SIZE, SIZE + 1, SIZE + 100};
        long[] counts = {0, 1, 4095, 65537, SIZE, 2L * SIZE, Long.MAX_VALUE};
        for (long p : positions) {
            for (long c : counts) {
                out.add(Arguments.of(p, c));
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "file target position={0} count={1}")
    @MethodSource("ranges")
    void fileTargetMatchesJdk(long position, long count) throws IOException {
        Path src = Fixtures.file(dir, "src", DATA);
        byte[] prefix = "prefix".getBytes();
        Path a = Fixtures.file(dir, "jdk", prefix);
        Path b = Fixtures.file(dir, "zc", prefix);
        try (FileChannel s = Fixtures.read(src); FileChannel ta = Fixtures.readWrite(a); FileChannel tb = Fixtures.readWrite(b)) {
            s.position(7);
            ta.position(3);
            tb.position(3);
            long jdk = s.transferTo(position, count, ta);
            long zc = ZeroCopy.transferTo(s, position, count, tb);
            assertEquals(jdk, zc, "return value");
            assertEquals(7, s.position(), "source position unchanged");
            assertEquals(ta.position(), tb.position(), "target position");
        }
        assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b), "target content");
    }

    @ParameterizedTest(name = "socket target position={0} count={1}")
    @MethodSource("streamRanges")
    void socketTargetMatchesJdk(long position, long count) throws Exception {
        Path src = Fixtures.file(dir, "src", DATA);
        byte[][] got = new byte[2][];
        long[] ret = new long[2];
        for (int i = 0; i < 2; i++) {
            SocketChannel[] p = Fixtures.tcpPair();
            try (FileChannel s = Fixtures.read(src)) {
                Future<byte[]> peer = Fixtures.drain(p[1]);
                ret[i] = i == 0 ? s.transferTo(position, count, p[0]) : ZeroCopy.transferTo(s, position, count, p[0]);
                p[0].shutdownOutput();
                got[i] = get(peer);
                assertEquals(0, s.position());
            } finally {
                Fixtures.closeAll(p[0], p[1]);
            }
        }
        assertEquals(ret[0], ret[1], "return value");
        assertArrayEquals(got[0], got[1], "bytes received");
        assertArrayEquals(Fixtures.slice(DATA, position, position + Math.min(count, SIZE)), got[1]);
    }

    static Stream<Arguments> streamRanges() {
        List<Arguments> out = new ArrayList<>();
        for (long p : new long[] {0, 4097, SIZE, SIZE + 1}) {
            for (long c : new long[] {0, 1, 65537, 2L * SIZE}) {
                out.add(Arguments.of(p, c));
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "pipe target position={0} count={1}")
    @MethodSource("streamRanges")
    void pipeTargetMatchesJdk(long position, long count) throws Exception {
        Path src = Fixtures.file(dir, "src", DATA);
        byte[][] got = new byte[2][];
        long[] ret = new long[2];
        for (int i = 0; i < 2; i++) {
            Pipe pipe = Pipe.open();
            try (FileChannel s = Fixtures.read(src)) {
                Future<byte[]> peer = Fixtures.drain(pipe.source());
                ret[i] = i == 0 ? s.transferTo(position, count, pipe.sink()) : ZeroCopy.transferTo(s, position, count, pipe.sink());
                pipe.sink().close();
                got[i] = get(peer);
            } finally {
                Fixtures.closeAll(pipe.sink(), pipe.source());
            }
        }
        // The JDK may stop at the pipe's capacity; a blocking target gets the whole range here.
        long want = Math.max(0, Math.min(count, SIZE - position));
        assertEquals(want, ret[1], "return value");
        assertTrue(ret[0] <= ret[1], "the JDK moves at most as much");
        assertArrayEquals(Fixtures.slice(DATA, position, position + want), got[1], "bytes received");
        assertArrayEquals(Fixtures.slice(got[1], 0, ret[0]), got[0], "the JDK's bytes are a prefix");
    }

    /** Runs a call and returns its value or the class of what it threw. */
    interface Call {
        long run() throws Exception;
    }

    static Object outcome(Call c) {
        try {
            return c.run();
        } catch (Exception e) {
            return e.getClass();
        }
    }

    interface Case {
        Object run(boolean zc) throws Exception;
    }

    @Test
    void exceptionsMatchJdk() throws Exception {
        Path src = Fixtures.file(dir, "src", DATA);
        Path dst = Fixtures.file(dir, "dst", new byte[0]);
        List<Case> cases = new ArrayList<>();
        // closed source
        cases.add(zc -> {
            FileChannel s = Fixtures.read(src);
            s.close();
            try (FileChannel t = Fixtures.readWrite(dst)) {
                return call(zc, s, 0, 10, t);
            }
        });
        // closed target
        cases.add(zc -> {
            FileChannel t = Fixtures.readWrite(dst);
            t.close();
            try (FileChannel s = Fixtures.read(src)) {
                return call(zc, s, 0, 10, t);
            }
        });
        // non-readable source
        cases.add(zc -> {
            try (FileChannel s = FileChannel.open(src, StandardOpenOption.WRITE); FileChannel t = Fixtures.readWrite(dst)) {
                return call(zc, s, 0, 10, t);
            }
        });
        // non-writable file target
        cases.add(zc -> {
            try (FileChannel s = Fixtures.read(src); FileChannel t = Fixtures.read(dst)) {
                return call(zc, s, 0, 10, t);
            }
        });
        // negative position, negative count, both
        for (long[] pc : new long[][] {{-1, 10}, {0, -1}, {-5, -5}}) {
            cases.add(zc -> {
                try (FileChannel s = Fixtures.read(src); FileChannel t = Fixtures.readWrite(dst)) {
                    return call(zc, s, pc[0], pc[1], t);
                }
            });
        }
        // non-writable target and negative position: which check comes first
        cases.add(zc -> {
            try (FileChannel s = Fixtures.read(src); FileChannel t = Fixtures.read(dst)) {
                return call(zc, s, -1, 10, t);
            }
        });
        // closed socket target
        cases.add(zc -> {
            SocketChannel[] p = Fixtures.tcpPair();
            p[0].close();
            try (FileChannel s = Fixtures.read(src)) {
                return call(zc, s, 0, 10, p[0]);
            } finally {
                p[1].close();
            }
        });
        for (int i = 0; i < cases.size(); i++) {
            Object jdk = cases.get(i).run(false);
            Object zc = cases.get(i).run(true);
            assertInstanceOf(Class.class, jdk, "case " + i + " should throw");
            assertEquals(jdk, zc, "case " + i);
        }
    }

    static Object call(boolean zc, FileChannel s, long position, long count, WritableByteChannel t) {
        return outcome(() -> zc ? ZeroCopy.transferTo(s, position, count, t) : s.transferTo(position, count, t));
    }

    @Test
    void nullArgumentsThrowNpe() throws IOException {
        Path src = Fixtures.file(dir, "src", DATA);
        try (FileChannel s = Fixtures.read(src)) {
            assertThrows(NullPointerException.class, () -> ZeroCopy.transferTo(s, 0, 1, null));
            assertThrows(NullPointerException.class, () -> ZeroCopy.transferTo(null, 0, 1, s));
        }
    }

    /** A 5 GiB sparse file: the whole range in one call, where the JDK stops at 0x7ffff000. */
    @Test
    void moreThanTwoGibInOneCall() throws Exception {
        long size = 5L << 30;
        Path src = dir.resolve("sparse");
        byte[] marker = "across-the-4GiB-line".getBytes();
        try (RandomAccessFile f = new RandomAccessFile(src.toFile(), "rw")) {
            f.setLength(size);
            f.seek((4L << 30) - 7);
            f.write(marker);
        }
        try (FileChannel s = Fixtures.read(src); FileChannel devNull = new FileOutputStream("/dev/null").getChannel()) {
            long jdk = s.transferTo(0, Long.MAX_VALUE, devNull);
            assertTrue(jdk <= Integer.MAX_VALUE, "the JDK stops below 2 GiB: " + jdk);
            assertEquals(size, ZeroCopy.transferTo(s, 0, Long.MAX_VALUE, devNull));
            assertEquals(size - 123, ZeroCopy.transferTo(s, 123, Long.MAX_VALUE, devNull));
        }
        // Offsets above 4 GiB reach the right bytes.
        SocketChannel[] p = Fixtures.tcpPair();
        try (FileChannel s = Fixtures.read(src)) {
            Future<byte[]> peer = Fixtures.drain(p[1]);
            assertEquals(marker.length, ZeroCopy.transferTo(s, (4L << 30) - 7, marker.length, p[0]));
            p[0].shutdownOutput();
            assertArrayEquals(marker, get(peer));
        } finally {
            Fixtures.closeAll(p[0], p[1]);
        }
    }

    /** A blocking socket target gets the whole range, also when it needs many waits. */
    @Test
    void blockingSocketGetsWholeRange() throws Exception {
        Path src = sparse(256L << 20);
        SocketChannel[] p = Fixtures.tcpPair();
        try (FileChannel s = Fixtures.read(src)) {
            Future<Long> peer = Fixtures.count(p[1]);
            assertEquals(256L << 20, ZeroCopy.transferTo(s, 0, Long.MAX_VALUE, p[0]));
            p[0].shutdownOutput();
            assertEquals(256L << 20, get(peer));
            assertTrue(p[0].isBlocking());
        } finally {
            Fixtures.closeAll(p[0], p[1]);
        }
    }

    /** Non-blocking target whose peer does not read: a partial count, then 0, as NIO does. */
    @Test
    void nonBlockingTargetWhosePeerDoesNotRead() throws Exception {
        long size = 64L << 20;
        Path src = sparse(size);
        long[] first = new long[2];
        long[] second = new long[2];
        for (int i = 0; i < 2; i++) {
            SocketChannel[] p = Fixtures.tcpPair();
            try (FileChannel s = Fixtures.read(src)) {
                p[0].configureBlocking(false);
                first[i] = i == 0 ? s.transferTo(0, size, p[0]) : ZeroCopy.transferTo(s, 0, size, p[0]);
                second[i] = i == 0 ? s.transferTo(first[i], size, p[0]) : ZeroCopy.transferTo(s, first[i], size, p[0]);
                assertFalse(p[0].isBlocking());
            } finally {
                Fixtures.closeAll(p[0], p[1]);
            }
        }
        for (int i = 0; i < 2; i++) {
            assertTrue(first[i] > 0 && first[i] < size, "partial first call: " + first[i]);
            assertEquals(0, second[i], "nothing fits on the second call");
        }
    }

    /** A transfer into a closed peer fails with EPIPE/ECONNRESET and the JVM survives. */
    @Test
    void closedPeer() throws Exception {
        Path src = sparse(8L << 20);
        SocketChannel[] p = Fixtures.tcpPair();
        p[1].close();
        try (FileChannel s = Fixtures.read(src)) {
            IOException e = assertThrows(IOException.class, () -> {
                for (int i = 0; i < 100; i++) {
                    ZeroCopy.transferTo(s, 0, 8L << 20, p[0]);
                    Thread.sleep(10);
                }
            });
            ZcopyException z = assertInstanceOf(ZcopyException.class, e);
            assertTrue(z.errno() == 32 || z.errno() == 104, "errno " + z.errno());
        } finally {
            p[0].close();
        }
    }

    @Test
    void asynchronousCloseEndsTheCall() throws Exception {
        Path src = sparse(64L << 20);
        SocketChannel[] p = Fixtures.tcpPair();
        try (FileChannel s = Fixtures.read(src)) {
            CompletableFuture<Void> closer = CompletableFuture.runAsync(() -> {
                sleep(300);
                Fixtures.closeAll(p[0]);
            }, Fixtures.POOL);
            long t0 = System.nanoTime();
            assertThrows(AsynchronousCloseException.class, () -> ZeroCopy.transferTo(s, 0, 64L << 20, p[0]));
            assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(10));
            closer.get(10, TimeUnit.SECONDS);
            assertTrue(s.isOpen());
        } finally {
            Fixtures.closeAll(p[0], p[1]);
        }
    }

    @Test
    void interruptClosesTheChannels() throws Exception {
        Path src = sparse(64L << 20);
        SocketChannel[] p = Fixtures.tcpPair();
        FileChannel s = Fixtures.read(src);
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        Thread t = new Thread(() -> {
            try {
                ZeroCopy.transferTo(s, 0, 64L << 20, p[0]);
            } catch (Throwable e) {
                thrown.set(e);
            }
        });
        try {
            t.start();
            sleep(300);
            t.interrupt();
            t.join(10_000);
            assertFalse(t.isAlive());
            assertInstanceOf(ClosedByInterruptException.class, thrown.get());
            assertFalse(s.isOpen());
            assertFalse(p[0].isOpen());
        } finally {
            Fixtures.closeAll(s, p[0], p[1]);
        }
    }

    /** From a virtual thread the whole range arrives (JDK 21+; the JDK returns less there). */
    @Test
    void virtualThread() throws Exception {
        Assumptions.assumeTrue(Fixtures.jdk() >= 21, "virtual threads need JDK 21+");
        long size = 128L << 20;
        Path src = sparse(size);
        SocketChannel[] p = Fixtures.tcpPair();
        try (FileChannel s = Fixtures.read(src)) {
            Future<Long> peer = Fixtures.count(p[1]);
            CompletableFuture<Long> result = new CompletableFuture<>();
            Thread vt = startVirtual(() -> {
                try {
                    result.complete(ZeroCopy.transferTo(s, 0, size, p[0]));
                } catch (Throwable e) {
                    result.completeExceptionally(e);
                }
            });
            assertEquals(size, result.get(60, TimeUnit.SECONDS));
            vt.join();
            p[0].shutdownOutput();
            assertEquals(size, get(peer));
        } finally {
            Fixtures.closeAll(p[0], p[1]);
        }
    }

    /** Thread.ofVirtual().start(r), by reflection: the main code is Java 17 bytecode. */
    static Thread startVirtual(Runnable r) throws Exception {
        Object builder = Thread.class.getMethod("ofVirtual").invoke(null);
        return (Thread) Class.forName("java.lang.Thread$Builder").getMethod("start", Runnable.class).invoke(builder, r);
    }

    Path sparse(long size) throws IOException {
        Path p = dir.resolve("sparse-" + size);
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(size);
            f.write(bytes(4096, size));
        }
        return p;
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static Duration seconds(long s) {
        return Duration.ofSeconds(s);
    }

    static ByteBuffer direct(byte[] b) {
        ByteBuffer buf = ByteBuffer.allocateDirect(b.length);
        buf.put(b).flip();
        return buf;
    }
}
