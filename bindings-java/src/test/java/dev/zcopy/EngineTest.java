package dev.zcopy;

import static dev.zcopy.Fixtures.bytes;
import static dev.zcopy.Fixtures.get;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.channels.FileChannel;
import java.nio.channels.Pipe;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** ZeroCopy.transfer (the engine on FileDescriptors), the loader, and the error table. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class EngineTest {
    static final byte[] DATA = bytes(1 << 20 | 1, 4);

    @TempDir
    Path dir;

    @Test
    void versionAndLoader() {
        assertEquals(NativeLoader.expectedVersion(), ZeroCopy.version());
        assertTrue(ZeroCopy.version().matches("\\d+\\.\\d+\\.\\d+.*"));
        assertNotNull(NativeLoader.source());
        assertTrue(NativeLoader.source().startsWith("resource") || System.getProperty(NativeLoader.PATH_PROPERTY) != null,
                NativeLoader.source());
    }

    @Test
    void capabilities() {
        Set<Method> caps = ZeroCopy.capabilities();
        assertTrue(caps.contains(Method.READ_WRITE));
        assertTrue(caps.contains(Method.SENDFILE), caps.toString());
        assertFalse(caps.contains(Method.AUTO));
        assertThrows(UnsupportedOperationException.class, () -> caps.add(Method.AUTO));
        for (Method m : Method.values()) {
            assertEquals(m, Method.fromNumber(m.number()));
        }
    }

    @Test
    void fileToFileAdvancesBothPositions() throws Exception {
        Path src = Fixtures.file(dir, "src", DATA);
        Path dst = dir.resolve("dst");
        try (FileInputStream in = new FileInputStream(src.toFile()); FileOutputStream out = new FileOutputStream(dst.toFile())) {
            TransferReport r1 = ZeroCopy.transfer(in.getFD(), out.getFD(), TransferOptions.builder().count(1000).build());
            assertEquals(1000, r1.bytes());
            assertFalse(r1.wouldBlock());
            assertTrue(r1.syscalls() > 0);
            TransferReport r2 = ZeroCopy.transfer(in.getFD(), out.getFD(), TransferOptions.defaults());
            assertEquals(DATA.length - 1000, r2.bytes());
            assertEquals(DATA.length, in.getChannel().position());
            assertEquals(DATA.length, out.getChannel().position());
            assertNotNull(r2.toString());
        }
        Fixtures.assertFile(DATA, dst);
    }

    @Test
    void everyExplicitMethodFileToSocket() throws Exception {
        Path src = Fixtures.file(dir, "src", DATA);
        for (Method m : ZeroCopy.capabilities()) {
            if (m == Method.COPY_FILE_RANGE) {
                continue;
            }
            SocketChannel[] p = Fixtures.tcpPair();
            try (RandomAccessFile f = new RandomAccessFile(src.toFile(), "r")) {
                Future<byte[]> peer = Fixtures.drain(p[1]);
                TransferReport r = ZeroCopy.transfer(f.getFD(), Native.channelFd(p[0]),
                        TransferOptions.builder().method(m).offset(5).build());
                p[0].shutdownOutput();
                assertEquals(DATA.length - 5, r.bytes(), m.toString());
                assertEquals(m, r.method(), m.toString());
                assertArrayEquals(Fixtures.slice(DATA, 5, DATA.length), get(peer), m.toString());
                assertEquals(0, f.getFilePointer(), "an offset leaves the position alone");
            } finally {
                Fixtures.closeAll(p[0], p[1]);
            }
        }
    }

    @Test
    void pipeToFile() throws Exception {
        Pipe pipe = Pipe.open();
        Path dst = dir.resolve("dst");
        try (FileOutputStream out = new FileOutputStream(dst.toFile())) {
            Fixtures.POOL.submit(() -> {
                try (Pipe.SinkChannel sink = pipe.sink()) {
                    sink.write(java.nio.ByteBuffer.wrap(DATA));
                }
                return null;
            });
            TransferReport r = ZeroCopy.transfer(Native.channelFd(pipe.source()), out.getFD(), TransferOptions.defaults());
            assertEquals(DATA.length, r.bytes());
        } finally {
            pipe.source().close();
        }
        Fixtures.assertFile(DATA, dst);
    }

    @Test
    void zeroCountIsImmediateSuccess() throws Exception {
        Path src = Fixtures.file(dir, "src", DATA);
        try (FileInputStream in = new FileInputStream(src.toFile()); FileOutputStream out = new FileOutputStream(dir.resolve("d").toFile())) {
            assertEquals(0, ZeroCopy.transfer(in.getFD(), out.getFD(), TransferOptions.builder().count(0).build()).bytes());
        }
    }

    @Test
    void optionsValidateTheirArguments() {
        assertThrows(IllegalArgumentException.class, () -> TransferOptions.builder().offset(-1));
        assertThrows(IllegalArgumentException.class, () -> TransferOptions.builder().count(-1));
        assertThrows(IllegalArgumentException.class, () -> TransferOptions.builder().timeout(Duration.ofSeconds(-1)));
        assertThrows(NullPointerException.class, () -> TransferOptions.builder().method(null));
        TransferOptions o = TransferOptions.builder().method(Method.SPLICE).offset(3).count(4).timeout(Duration.ofMillis(5)).fallback(true).build();
        assertEquals(Method.SPLICE, o.method());
        assertEquals(3, o.offset());
        assertEquals(4, o.count());
        assertEquals(Duration.ofMillis(5), o.timeout());
        assertTrue(o.fallback());
        assertEquals(-1, TransferOptions.defaults().offset());
    }

    /** Triggers the outcome of each row of tests/cases/errors.tsv and checks the Java column. */
    @Test
    void errorTable() throws Exception {
        Map<String, String> javaColumn = new HashMap<>();
        List<String> lines = Files.readAllLines(Path.of("..", "tests", "cases", "errors.tsv"));
        for (String line : lines) {
            if (line.startsWith("#") || line.isBlank()) {
                continue;
            }
            String[] cols = line.split("\t");
            javaColumn.put(cols[0], cols[4]);
        }
        assertEquals(8, javaColumn.size(), "errors.tsv rows");
        Path src = Fixtures.file(dir, "src", DATA);
        Map<String, Throwable> seen = new HashMap<>();
        try (FileInputStream in = new FileInputStream(src.toFile()); FileOutputStream out = new FileOutputStream(dir.resolve("d").toFile())) {
            // Os: a FileDescriptor that is not valid is EBADF.
            ZcopyException os = assertThrows(ZcopyException.class,
                    () -> ZeroCopy.transfer(new FileDescriptor(), out.getFD(), TransferOptions.defaults()));
            assertEquals(9, os.errno());
            assertEquals(0, os.bytesTransferred());
            seen.put("Os", os);
            // Unsupported: copy_file_range into a socket, without fallback; nothing consumed.
            SocketChannel[] p = Fixtures.tcpPair();
            try {
                seen.put("Unsupported", assertThrows(ZcopyUnsupportedException.class, () -> ZeroCopy.transfer(in.getFD(),
                        Native.channelFd(p[0]), TransferOptions.builder().method(Method.COPY_FILE_RANGE).build())));
                assertEquals(0, in.getChannel().position());
                // ... and with fallback allowed it works.
                Future<byte[]> peer = Fixtures.drain(p[1]);
                TransferReport r = ZeroCopy.transfer(in.getFD(), Native.channelFd(p[0]),
                        TransferOptions.builder().method(Method.COPY_FILE_RANGE).fallback(true).count(10).build());
                assertEquals(10, r.bytes());
                assertTrue(r.fallbacks() >= 1);
                p[0].shutdownOutput();
                assertArrayEquals(Fixtures.slice(DATA, 0, 10), get(peer));
            } finally {
                Fixtures.closeAll(p[0], p[1]);
            }
            // InvalidArgument: an unknown method number through the bridge.
            seen.put("InvalidArgument", assertThrows(IllegalArgumentException.class,
                    () -> Native.transfer(in.getFD(), out.getFD(), 99, -1, -1, -1, false, -1, 0, new long[Native.REPORT_LEN])));
            // NullParameter.
            seen.put("NullParameter", assertThrows(NullPointerException.class,
                    () -> Native.transfer(null, out.getFD(), 0, -1, -1, -1, false, -1, 0, new long[Native.REPORT_LEN])));
            assertThrows(NullPointerException.class, () -> ZeroCopy.transfer(in.getFD(), out.getFD(), null));
        }
        // WouldBlock: a non-blocking socket whose peer does not read, timeout zero: a report.
        Path big = dir.resolve("big");
        try (RandomAccessFile f = new RandomAccessFile(big.toFile(), "rw")) {
            f.setLength(64L << 20);
        }
        SocketChannel[] p = Fixtures.tcpPair();
        try (FileInputStream in = new FileInputStream(big.toFile())) {
            p[0].configureBlocking(false);
            TransferReport r = ZeroCopy.transfer(in.getFD(), Native.channelFd(p[0]), TransferOptions.builder().timeout(Duration.ZERO).build());
            assertTrue(r.wouldBlock());
            assertTrue(r.bytes() > 0 && r.bytes() < 64L << 20, "partial: " + r.bytes());
            assertEquals(r.bytes(), in.getChannel().position(), "resumable: position = start + bytes");
            assertFalse(p[0].isBlocking());
            // TimedOut: the same with a short deadline; progress is carried.
            p[0].configureBlocking(true);
            long t0 = System.nanoTime();
            ZcopyTimeoutException t = assertThrows(ZcopyTimeoutException.class, () -> ZeroCopy.transfer(in.getFD(),
                    Native.channelFd(p[0]), TransferOptions.builder().timeout(Duration.ofMillis(200)).build()));
            assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(5));
            assertEquals(r.bytes() + t.bytesTransferred(), in.getChannel().position());
            assertTrue(p[0].isBlocking(), "flags restored");
            seen.put("TimedOut", t);
        } finally {
            Fixtures.closeAll(p[0], p[1]);
        }
        // Panic: native code that panics throws AssertionError instead of crashing the JVM.
        seen.put("Panic", assertThrows(AssertionError.class, Native::panicForTest));
        for (Map.Entry<String, String> row : javaColumn.entrySet()) {
            String cls = row.getValue();
            if (cls.equals("-")) {
                continue;
            }
            Throwable e = seen.get(row.getKey());
            assertNotNull(e, "no test for " + row.getKey());
            assertInstanceOf(Class.forName(cls), e, row.getKey());
        }
    }

    @Test
    void closedFileDescriptorIsEbadf() throws Exception {
        Path src = Fixtures.file(dir, "src", DATA);
        FileInputStream in = new FileInputStream(src.toFile());
        FileDescriptor fd = in.getFD();
        in.close();
        try (FileOutputStream out = new FileOutputStream(dir.resolve("d").toFile())) {
            ZcopyException e = assertThrows(ZcopyException.class, () -> ZeroCopy.transfer(fd, out.getFD(), TransferOptions.defaults()));
            assertEquals(9, e.errno());
        }
    }

    @Test
    void closedPeerIsEpipeAndTheJvmSurvives() throws Exception {
        Path src = Fixtures.file(dir, "src", DATA);
        SocketChannel[] p = Fixtures.tcpPair();
        p[1].close();
        try (FileInputStream in = new FileInputStream(src.toFile())) {
            IOException e = assertThrows(IOException.class, () -> {
                for (int i = 0; i < 100; i++) {
                    ZeroCopy.transfer(in.getFD(), Native.channelFd(p[0]), TransferOptions.builder().offset(0).build());
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
    void channelOfAnotherImplementationHasNoFd() throws IOException {
        assertEquals(null, Native.channelFd(new Object()));
        assertEquals(-1, Native.channelAccess(new Object()));
        try (FileChannel ch = Fixtures.readWrite(dir.resolve("x"))) {
            assertEquals(3, Native.channelAccess(ch));
            assertTrue(Native.fdNumber(Native.channelFd(ch)) >= 0);
        }
    }
}
