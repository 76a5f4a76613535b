// zcopy Java benchmark (run by hand, not in tests): 1 GiB file -> loopback TCP socket and
// loopback TCP socket -> file, side by side in one run, rounds interleaved across scenarios.
// Prints per scenario the median GB/s and the median CPU seconds per GB of the whole process
// (receiver or sender thread included, the same in every scenario of a direction).
//
//   bash bench/java/run.sh [--size-mib N] [--rounds N] [--dir DIR]

import dev.zcopy.ZeroCopy;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

public class ZcopyBench {
    interface Scenario {
        /** Moves `size` bytes once; returns the bytes moved. */
        long run(Path file, long size) throws Exception;
    }

    static final ExecutorService PEER = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "peer");
        t.setDaemon(true);
        return t;
    });

    public static void main(String[] args) throws Exception {
        long sizeMib = 1024;
        int rounds = 5;
        Path dir = Path.of(Files.isDirectory(Path.of("/dev/shm")) ? "/dev/shm" : System.getProperty("java.io.tmpdir"));
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--size-mib" -> sizeMib = Long.parseLong(args[++i]);
                case "--rounds" -> rounds = Integer.parseInt(args[++i]);
                case "--dir" -> dir = Path.of(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        long size = sizeMib << 20;
        Path src = dir.resolve("zcopy-bench-src");
        Path dst = dir.resolve("zcopy-bench-dst");
        System.err.printf("creating %d MiB source file %s ...%n", sizeMib, src);
        writeSource(src, size);

        Map<String, Scenario> toSocket = new LinkedHashMap<>();
        toSocket.put("InputStream/OutputStream copy (64 KiB)", (f, n) -> fileToSocket(f, n, ZcopyBench::streamCopy));
        toSocket.put("heap ByteBuffer loop (64 KiB)", (f, n) -> fileToSocket(f, n, ZcopyBench::heapBufferLoop));
        toSocket.put("FileChannel.transferTo", (f, n) -> fileToSocket(f, n, ZcopyBench::jdkTransferTo));
        toSocket.put("ZeroCopy.transferTo", (f, n) -> fileToSocket(f, n, ZcopyBench::zcTransferTo));
        Map<String, Scenario> toFile = new LinkedHashMap<>();
        toFile.put("FileChannel.transferFrom", (f, n) -> socketToFile(f, dst, n, false));
        toFile.put("ZeroCopy.transferFrom", (f, n) -> socketToFile(f, dst, n, true));

        System.out.printf("zcopy %s Java benchmark: JDK %s, %d MiB, %d rounds, files in %s%n",
                ZeroCopy.version(), Runtime.version(), sizeMib, rounds, dir);
        Map<String, List<double[]>> results = new LinkedHashMap<>();
        Map<String, Scenario> all = new LinkedHashMap<>(toSocket);
        all.putAll(toFile);
        all.forEach((name, s) -> results.put(name, new ArrayList<>()));
        // One warm-up pass, then rounds interleaved across scenarios so drift hits them alike;
        // odd rounds run them in reverse, so no method always follows the same one.
        List<Map.Entry<String, Scenario>> order = new ArrayList<>(all.entrySet());
        for (int round = -1; round < rounds; round++) {
            List<Map.Entry<String, Scenario>> thisRound = new ArrayList<>(order);
            if (round % 2 != 0) {
                java.util.Collections.reverse(thisRound);
            }
            for (Map.Entry<String, Scenario> e : thisRound) {
                System.err.printf("round %d/%d: %s%n", round + 1, rounds, e.getKey());
                double[] m = measure(e.getValue(), src, size);
                if (round >= 0) {
                    results.get(e.getKey()).add(m);
                }
            }
        }
        print("file -> loopback TCP", toSocket.keySet(), results, "FileChannel.transferTo");
        print("loopback TCP -> file", toFile.keySet(), results, "FileChannel.transferFrom");
        Files.deleteIfExists(src);
        Files.deleteIfExists(dst);
    }

    static void print(String title, Iterable<String> names, Map<String, List<double[]>> results, String baseline) {
        double[] base = medians(results.get(baseline));
        System.out.printf("%n%s%n", title);
        System.out.printf("%-42s %10s %12s %12s %12s%n", "scenario", "GB/s", "CPU s/GB", "GB/s ratio", "CPU ratio");
        List<double[]> baseRounds = results.get(baseline);
        for (String n : names) {
            double[] m = medians(results.get(n));
            // Paired: each round's ratio to the baseline of the same round, then the median.
            List<double[]> ratios = new ArrayList<>();
            List<double[]> rows = results.get(n);
            for (int i = 0; i < rows.size(); i++) {
                ratios.add(new double[] {rows.get(i)[0] / baseRounds.get(i)[0], rows.get(i)[1] / baseRounds.get(i)[1]});
            }
            double[] r = medians(ratios);
            System.out.printf("%-42s %10.2f %12.3f %12.2f %12.2f%n", n, m[0], m[1], r[0], r[1]);
        }
        System.out.printf("(medians of %d rounds; ratios: median of per-round ratios against %s)%n",
                baseRounds.size(), baseline);
    }

    static double[] medians(List<double[]> rows) {
        double[] gbps = rows.stream().mapToDouble(r -> r[0]).sorted().toArray();
        double[] cpu = rows.stream().mapToDouble(r -> r[1]).sorted().toArray();
        return new double[] {gbps[gbps.length / 2], cpu[cpu.length / 2]};
    }

    /** [GB/s, CPU seconds per GB] of one run. */
    static double[] measure(Scenario s, Path src, long size) throws Exception {
        long cpu0 = cpuNanos();
        long t0 = System.nanoTime();
        long moved = s.run(src, size);
        long t1 = System.nanoTime();
        long cpu1 = cpuNanos();
        if (moved != size) {
            throw new IllegalStateException("moved " + moved + " of " + size);
        }
        double gb = size / 1e9;
        return new double[] {gb / ((t1 - t0) / 1e9), ((cpu1 - cpu0) / 1e9) / gb};
    }

    static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    static void writeSource(Path src, long size) throws IOException {
        byte[] block = new byte[1 << 20];
        new Random(42).nextBytes(block);
        try (FileChannel ch = FileChannel.open(src, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer b = ByteBuffer.wrap(block);
            for (long done = 0; done < size; done += block.length) {
                b.clear().limit((int) Math.min(block.length, size - done));
                while (b.hasRemaining()) {
                    ch.write(b);
                }
            }
        }
    }

    static SocketChannel[] tcpPair() throws IOException {
        try (ServerSocketChannel server = ServerSocketChannel.open()) {
            server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            SocketChannel c = SocketChannel.open(server.getLocalAddress());
            return new SocketChannel[] {c, server.accept()};
        }
    }

    interface Sender {
        long send(FileChannel file, SocketChannel sock, long size) throws IOException;
    }

    /** Sends the file with `sender` while a peer thread reads the socket into a direct buffer. */
    static long fileToSocket(Path file, long size, Sender sender) throws Exception {
        SocketChannel[] p = tcpPair();
        try (FileChannel f = FileChannel.open(file, StandardOpenOption.READ)) {
            Future<Long> peer = PEER.submit(() -> {
                ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
                long n = 0;
                int r;
                while ((r = p[1].read(buf)) >= 0) {
                    n += r;
                    buf.clear();
                }
                return n;
            });
            long sent = sender.send(f, p[0], size);
            p[0].shutdownOutput();
            long got = peer.get();
            if (got != sent) {
                throw new IllegalStateException("peer got " + got + " of " + sent);
            }
            return sent;
        } finally {
            p[0].close();
            p[1].close();
        }
    }

    static long streamCopy(FileChannel f, SocketChannel s, long size) throws IOException {
        InputStream in = Channels.newInputStream(f);
        OutputStream out = Channels.newOutputStream(s);
        byte[] buf = new byte[64 << 10];
        long n = 0;
        int r;
        while ((r = in.read(buf)) >= 0) {
            out.write(buf, 0, r);
            n += r;
        }
        return n;
    }

    static long heapBufferLoop(FileChannel f, SocketChannel s, long size) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(64 << 10);
        long n = 0;
        while (f.read(buf) >= 0) {
            buf.flip();
            while (buf.hasRemaining()) {
                n += s.write(buf);
            }
            buf.clear();
        }
        return n;
    }

    static long jdkTransferTo(FileChannel f, SocketChannel s, long size) throws IOException {
        long n = 0;
        while (n < size) {
            n += f.transferTo(n, size - n, s);
        }
        return n;
    }

    static long zcTransferTo(FileChannel f, SocketChannel s, long size) throws IOException {
        long n = 0;
        while (n < size) {
            n += ZeroCopy.transferTo(f, n, size - n, s);
        }
        return n;
    }

    /** A peer thread sends the file (sendfile); this thread writes the socket into `dst`. */
    static long socketToFile(Path file, Path dst, long size, boolean zc) throws Exception {
        SocketChannel[] p = tcpPair();
        try (FileChannel out = FileChannel.open(dst, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.READ, StandardOpenOption.TRUNCATE_EXISTING)) {
            Future<Long> peer = PEER.submit(() -> {
                try (FileChannel f = FileChannel.open(file, StandardOpenOption.READ)) {
                    long n = jdkTransferTo(f, p[1], size);
                    p[1].shutdownOutput();
                    return n;
                }
            });
            long n = 0;
            while (n < size) {
                long r = zc ? ZeroCopy.transferFrom(p[0], out, n, size - n) : out.transferFrom(p[0], n, size - n);
                if (r == 0) {
                    break;
                }
                n += r;
            }
            peer.get();
            return n;
        } finally {
            p[0].close();
            p[1].close();
        }
    }

}
