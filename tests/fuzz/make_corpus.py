# Writes the seed corpora of the libFuzzer targets: small valid files and edge cases per parser.
# corpus/<target>/<name>; the npz target's inputs start with a mode byte (even: .npy, odd: .npz).
# Run: /work/torchenv/bin/python tests/fuzz/make_corpus.py  (needs numpy); then scripts/fuzz.sh
import io, json, os, struct, zipfile, zlib
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def bgzf(text, eof=True):  # BGZF (bgzip): one deflate block with the 'BC' extra field, then the empty EOF block
    data = text.encode()
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = c.compress(data) + c.flush()
    head = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00" + struct.pack("<H", 18 + len(body) + 8 - 1)
    block = head + body + struct.pack("<II", zlib.crc32(data), len(data))
    return block + (bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000") if eof else b"")


def safetensors(tensors, metadata=None, pad=True):
    header, blobs, off = {}, [], 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


# ---- safetensors ----
f32 = np.arange(6, dtype="<f4").tobytes()
put("safetensors", "valid_f32", safetensors({"w": ("F32", [2, 3], f32)}))
put("safetensors", "valid_multi", safetensors({"a": ("F64", [2], np.array([1.5, -2], "<f8").tobytes()),
                                               "b": ("I64", [1], np.array([7], "<i8").tobytes()),
                                               "c": ("BF16", [2], b"\x80\x3f\x00\x40"),
                                               "d": ("F16", [1], b"\x00\x3c"),
                                               "e": ("BOOL", [3], b"\x01\x00\x01"),
                                               "s": ("F32", [], np.array([3], "<f4").tobytes()),
                                               "z": ("F32", [0, 4], b"")},
                                              {"format": "pt"}))
put("safetensors", "checkpoint_like", safetensors(
    {"model.w": ("F32", [2], np.array([1, 2], "<f4").tobytes()),
     "optim.w.exp_avg": ("F32", [2], np.zeros(2, "<f4").tobytes())},
    {"format": "lowpass-checkpoint", "format_version": "1", "epoch": "1", "step": "3",
     "rng_state": "0", "sampler_state": "", "config_hash": "0", "optimizer": "adam",
     "checksum": "00000000"}))
put("safetensors", "empty_header", struct.pack("<Q", 2) + b"{}")


def checkpoint(tensors, metadata):  # engine/checkpoint.cpp's CRC-32: tensor index, metadata, then the data section
    order = list(tensors)  # file order = data offset order, as the file lists them
    canon = "".join(f"{n}\0{tensors[n][0]}\0({', '.join(map(str, tensors[n][1]))})\n" for n in order)
    canon += "".join(f"{k}\0{v}\n" for k, v in sorted(metadata.items()))
    crc = zlib.crc32(b"".join(tensors[n][2] for n in order), zlib.crc32(canon.encode()))
    return safetensors(tensors, dict(metadata, checksum=f"crc32:{crc:08x}"))


# A checkpoint whose CRC fits: the fuzzer reaches the checks after it (epoch, step, tensor names) and JSON layouts.
put("safetensors", "checkpoint_valid", checkpoint(
    {"model.w": ("F32", [2], struct.pack("<2f", 1, 2)), "optim.w.exp_avg": ("F32", [2], struct.pack("<2f", 0, 0))},
    {"format": "lowpass.checkpoint", "format_version": "1", "epoch": "1", "step": "3", "rng_state": "0",
     "sampler_state": "", "config_hash": "0", "optimizer": "adam"}))
# A model folder's weights file (save_weights_file): the same CRC-32 scheme under format "lowpass-model".
put("safetensors", "weights_valid", checkpoint(
    {"conv.weight": ("F32", [2, 1], struct.pack("<2f", 0.5, -1)),
     "bn.num_batches_tracked": ("I64", [], struct.pack("<q", 7))},
    {"format": "lowpass-model"}))
put("safetensors", "huge_header_len", struct.pack("<Q", 1 << 62) + b"{}")
put("safetensors", "huge_shape", safetensors({"w": ("F32", [1 << 40, 1 << 40], f32)}))
put("safetensors", "overlap", b"".join([struct.pack("<Q", 0)]) + safetensors(
    {"a": ("F32", [1], f32[:4]), "b": ("F32", [1], f32[:4])})[8:])
put("safetensors", "truncated", safetensors({"w": ("F32", [2, 3], f32)})[:-5])

# ---- npy / npz (mode byte first) ----
def npy(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()

put("npz", "npy_f4", b"\x00" + npy(np.arange(5, dtype="<f4")))
put("npz", "npy_i8_2d", b"\x00" + npy(np.arange(6, dtype="<i8").reshape(2, 3)))
put("npz", "npy_bool", b"\x00" + npy(np.array([True, False])))
put("npz", "npy_scalar", b"\x00" + npy(np.float64(2.5)))
put("npz", "npy_empty", b"\x00" + npy(np.zeros((0, 3), "<f4")))
put("npz", "npy_bigendian", b"\x00" + npy(np.arange(3, dtype=">f4")))
put("npz", "npy_fortran", b"\x00" + npy(np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3))))
put("npz", "npy_huge_shape", b"\x00" + b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) +
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }".ljust(117) + b"\n")
for comp, name in [(zipfile.ZIP_STORED, "npz_stored"), (zipfile.ZIP_DEFLATED, "npz_deflate")]:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", comp) as z:
        z.writestr("x.npy", npy(np.arange(4, dtype="<f4")))
        z.writestr("y.npy", npy(np.arange(3, dtype="<u1")))
        z.writestr("readme.txt", "not an array")
    put("npz", name, b"\x01" + b.getvalue())
b = io.BytesIO()
with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as z:
    pass
put("npz", "npz_empty", b"\x01" + b.getvalue())


def npz_zip64(members):  # stored members with zip64 extra fields and end records, as NpzWriter(force_zip64) writes
    out, cd = b"", b""
    for name, data in members:
        n, crc, off = name.encode(), zlib.crc32(data), len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(n), 20)
        out += n + struct.pack("<HHQQ", 1, 16, len(data), len(data)) + data
        cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                          len(n), 28, 0, 0, 0, 0x81A40000, 0xFFFFFFFF)
        cd += n + struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
    cd_off, z_off = len(out), len(out) + len(cd)
    cd += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(members), len(members), len(cd), cd_off)
    cd += struct.pack("<IIQI", 0x07064B50, 0, z_off, 1)
    cd += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return out + cd


put("npz", "npz_zip64", b"\x01" + npz_zip64([("x.npy", npy(np.arange(4, dtype="<f4"))),
                                              ("y.npy", npy(np.arange(6, dtype="<u1").reshape(3, 2)))]))

# ---- MEME ----
meme = """MEME version 4

ALPHABET= ACGT

strands: + -

Background letter frequencies
A 0.25 C 0.25 G 0.25 T 0.25

MOTIF MA0080.6 Spi1
letter-probability matrix: alength= 4 w= 3 nsites= 20 E= 0
 0.1 0.2 0.3 0.4
 1.0 0.0 0.0 0.0
 0.25 0.25 0.25 0.25

MOTIF M2
letter-probability matrix: alength= 4 w= 1
 0 0 0 1
"""
put("meme", "valid", meme)
put("meme", "width_mismatch", meme.replace("w= 3", "w= 5"))
put("meme", "zero_row", meme.replace(" 0 0 0 1", " 0 0 0 0"))
put("meme", "alength_5", meme.replace("alength= 4 w= 3", "alength= 5 w= 3"))
put("meme", "no_motif", "MEME version 4\n\nALPHABET= ACGT\n")
put("meme", "huge_width", meme.replace("w= 3", "w= 99999999999999999999"))

# ---- config ----
put("config", "binary_min", json.dumps({"model": {"type": "binary"}}))
put("config", "profile", json.dumps({"model": {"type": "profile"}, "train": {"batch_size": 2, "epochs": 1},
                                     "prior": {"weight": 1.0}}))
put("config", "unknown_key", json.dumps({"model": {"type": "binary"}, "train": {"bach_size": 3}}))
put("config", "wrong_type", json.dumps({"model": {"type": "binary"}, "train": {"batch_size": "big"}}))
put("config", "negative", json.dumps({"model": {"type": "binary"}, "train": {"batch_size": -1, "lr": -1e308}}))
put("config", "huge", json.dumps({"model": {"type": "binary"}, "train": {"batch_size": 1e30, "seed": -1}}))
put("config", "not_object", "[1, 2, 3]")
put("config", "truncated", '{"model": {"type": "bin')
# data.genome and data.sequences (models/train/config_genome.cpp): no seed reached them, nor did 2.2M runs
BINARY = {"type": "binary", "input_length": 100}
GENOME = {"fasta": "g.fa", "peaks": ["p.narrowPeak"], "bin": 50, "flank": 25, "stride": 25, "jitter": 5,
          "folds": {"train": ["chr1", "chr2"], "valid": [], "test": ["chr3"]}}
put("config", "genome_binary", json.dumps({"model": BINARY, "data": {"genome": GENOME}}))
put("config", "genome_folds_file", json.dumps({"model": BINARY, "data": {"genome": dict(GENOME, folds="folds.json",
                                                                                     negatives="gc_matched")}}))
put("config", "genome_profile", json.dumps({"model": {"type": "profile", "controls": "none"}, "data": {"genome": {
    "fasta": "g.fa", "peaks": ["p.narrowPeak"], "bigwigs": [["plus.bw", "minus.bw"]], "controls": [],
    "folds": {"train": ["chr1"], "validation": ["chr2"]}}}}))
put("config", "sequences", json.dumps({"model": {"type": "binary"}, "data": {"sequences": {
    "train": {"positives": "pos.fa", "negatives": "neg.fa"}, "valid": {"positives": "vp.fa", "negatives": "vn.fa"}}}}))
# bin + 2 * flank wrapped round in int64 to input_length (UBSan under fuzz_config; found reading the unreached code)
put("config", "genome_window_wraps", json.dumps({"model": BINARY, "data": {"genome": dict(
    GENOME, bin=9223372036854773908, flank=4611686018427388904)}}))

# ---- folds ----
put("folds", "valid", json.dumps({"train": ["chr1"], "valid": ["chr2"], "test": ["chrX"]}))
put("folds", "no_valid", json.dumps({"train": ["chr1", "chr2"], "test": ["chrX"]}))
put("folds", "duplicate", json.dumps({"train": ["chr1"], "valid": ["chr1"], "test": ["chrX"]}))
put("folds", "not_string", json.dumps({"train": [1], "test": [None]}))
put("folds", "not_in_genome", json.dumps({"train": ["chr9"], "test": ["chrX"]}))
put("folds", "extra_keys", json.dumps({"train": ["chr1"], "test": ["chr2"], "fold": 0, "valid": "chrX"}))

# ---- BED / narrowPeak ----
put("bed", "bed3", "chr1\t10\t20\nchr1\t15\t40\nchr2\t0\t500\n")
put("bed", "bed6", "track name=x\n# comment\nchr1\t10\t20\tp1\t5\t+\nchrX\t0\t10\tp2\t0\t-\n")
put("bed", "narrowpeak", "chr1\t100\t200\tp\t0\t.\t5.5\t-1\t-1\t50\nchr2\t10\t20\tp\t0\t.\t1e3\t2\t3\t-1\n")
put("bed", "bgzip", bgzf("chr1\t10\t20\nchr2\t0\t500\n"))
put("bed", "bgzip_no_eof", bgzf("chr1\t10\t20\n", eof=False))
put("bed", "bad_summit", "chr1\t100\t200\tp\t0\t.\t5.5\t-1\t-1\t500\n")
put("bed", "negative", "chr1\t-5\t20\n")
put("bed", "reversed", "chr1\t30\t20\n")
put("bed", "past_end", "chr2\t0\t501\n")
put("bed", "unknown_chrom", "1\t0\t10\n")
put("bed", "huge", "chr1\t0\t99999999999999999999999\n")
put("bed", "unsorted", "chr2\t0\t10\nchr1\t0\t10\nchr2\t20\t30\n")
put("bed", "crlf", "chr1\t10\t20\r\nchr1\t30\t40\r\n")

# ---- FASTA (first line: region requests "chrom start end;...", then the FASTA file) ----
put("fasta", "valid", "chr1 0 5;chr2 1 3;chrM 0 1\n>chr1\nACGTACGTNNacgt\nACG\n>chr2 desc\nTTTT\n")
put("fasta", "bad_region", "chr1 5 2;chr1 -1 3;chr9 0 1;chr1 0 999999999999\n>chr1\nACGT\n")
put("fasta", "uneven_lines", "chr1 0 6\n>chr1\nACGT\nAC\nACGT\n")
put("fasta", "no_header", "chr1 0 1\nACGT\n")
put("fasta", "empty_record", "x 0 0\n>a\n>b\nAC\n")
put("fasta", "duplicate", "a 0 2\n>a\nAC\n>a\nGT\n")
put("fasta", "crlf", "a 0 4\r\n>a\r\nACGT\r\nAC\r\n")
put("fasta", "lowercase_n", "a 0 8\n>a\nnnnnNNNN\n")
# A "%fai" line ends the FASTA and starts the .fai found beside it ("%faz": the FASTA bgzipped, its .gzi built).
FA2, FAI2 = ">chr1\nACGTACGTNNacgt\nACG\n>chr2 desc\nTTTT\n", "chr1\t17\t6\t14\t15\nchr2\t4\t36\t4\t5\n"
put("fasta", "fai_fits", "chr1 0 5;chr2 1 3\n" + FA2 + "%fai\n" + FAI2)
put("fasta", "faz_fits", "chr1 0 17;chr2 1 3\n" + FA2 + "%faz\n" + FAI2)
put("fasta", "fai_stale", "chr1 0 5\n>chr1 x\nACGTACGTNNacgt\nACG\n>chr2 desc\nTTTT\n%fai\n" + FAI2)
# 8330787646191410417 bases in lines of 14 bases and 31 bytes: the end offset wrapped round to the true one (24)
put("fasta", "fai_wraps", "chr1 0 5\n" + FA2 + "%fai\nchr1\t8330787646191410417\t6\t14\t31\n")

# ---- VCF against the target's fixed genome (chr1: 120 bp, chr2: 40 bp; windows of 21) ----
VH = "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=120>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
G1 = "".join("ACGTTGCAacgtNNAC"[(i * 7 + i // 5) % 16] for i in range(120))
put("vcf", "snv_indels", VH + f"chr1\t50\trs1\t{G1[49]}\tA,C\t.\tPASS\t.\n"
    f"chr1\t60\t.\t{G1[59:62]}\t{G1[59]}\t.\t.\t.\n" f"chr1\t70\t.\t{G1[69]}\t{G1[69]}GGT\t.\t.\tDP=3\n")
put("vcf", "symbolic", VH + f"chr1\t50\tsv\t{G1[49]}\t<DEL>,*\t.\t.\tSVTYPE=DEL\n")
put("vcf", "wrong_ref", VH + "chr1\t50\t.\tNNNT\tA\t.\t.\t.\n" + "chr1\t51\t.\tT\tA\t.\t.\t.\n")
put("vcf", "no_contig_line", VH + "chr2\t20\t.\tN\tA\t.\t.\t.\nchr9\t5\t.\tA\tC\t.\t.\t.\n")
put("vcf", "edges", VH + f"chr1\t1\t.\t{G1[0]}\tA\t.\t.\t.\nchr1\t120\t.\t{G1[119]}\tA\t.\t.\t.\n")
put("vcf", "bad_pos", VH + "chr1\tx\t.\tA\tC\t.\t.\t.\nchr1\t-5\t.\tA\tC\t.\t.\t.\n")
put("vcf", "no_header", "chr1\t50\t.\tA\tC\t.\t.\t.\n")
put("vcf", "bgzip", bgzf(VH + f"chr1\t50\trs1\t{G1[49]}\tA,C\t.\tPASS\t.\n"))
