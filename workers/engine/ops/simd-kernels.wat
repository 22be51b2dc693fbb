;; WASM's kernels of webtune's own, with 128-bit SIMD, on tfjs-backend-wasm's heap (this module imports that memory;
;; every argument is a byte address in it): PackedMatMul's product (int8, int4, bf16), Dequantize's unpacking of a whole
;; matrix (and its 4 × 4 transpose), float32 products for BatchMatMul (f32mm), and a decoded token's attention (its
;; scores and its weighted sum of values).
;;
;; PackedMatMul: out[n · ldo + r] = Σₖ x[n, k] · W[r, k] for a packed W [R, K] (quant/format.ts), read straight from
;; tfjs-backend-wasm's heap. out's rows are $ldo elements apart, so that a run over a part of W's rows (ops/simd-pool.ts
;; splits a product across threads) writes its own columns. Each W row is streamed once per x row, a 16-byte vector at
;; a time, unpacked in registers.
;; - int8 and int4 take x already rounded to int16 per row (x[n, k] ≈ xq[n, k] · xs[n], ops/packed-matmul-simd.ts), so
;;   a vector of weights is widened once to i16 and multiplied-and-added in pairs (i32x4.dot_i16x8_s), exactly, in
;;   integers; each group's integer sum is then scaled once in float32.
;; - bf16 takes x in float32: each half widened and shifted is its float32 value exactly.
;; Callers check that K is a multiple of the vector's elements (int8 16, int4 32, bf16 8), that a group is a whole number
;; of vectors, and that no i32 lane can overflow (int4: a group of at most 4096). Built into ops/simd-kernels.wasm.ts
;; by `npm run build:wasm`.
(module
  (import "env" "memory" (memory MEMORY_LIMITS))

  ;; Σ of the four lanes.
  (func $sum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  ;; int8: byte b of a word is element 4j + b, so 16 bytes are 16 elements in order; x is int16 [N, K]. Scales [R, K / G].
  ;; A lane gains at most 4 · 128 · 32767 a vector, so the integer sum goes to float32 every 1024 elements (64 vectors).
  (func (export "int8") (param $x i32) (param $N i32) (param $w i32) (param $s i32) (param $R i32) (param $K i32) (param $G i32) (param $out i32) (param $xs i32) (param $ldo i32)
    (local $n i32) (local $r i32) (local $xr i32) (local $xp i32) (local $wp i32) (local $gEnd i32) (local $cEnd i32) (local $rEnd i32)
    (local $acc v128) (local $part v128) (local $dot v128) (local $q v128)
    (loop $rows_n
      (local.set $xr (i32.add (local.get $x) (i32.shl (i32.mul (local.get $n) (local.get $K)) (i32.const 1))))
      (local.set $r (i32.const 0))
      (local.set $wp (local.get $w))
      (loop $rows_w
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $xp (local.get $xr))
        (local.set $rEnd (i32.add (local.get $wp) (local.get $K)))
        (loop $groups
          (local.set $part (v128.const i32x4 0 0 0 0))
          (local.set $gEnd (i32.add (local.get $wp) (local.get $G)))
          (loop $chunks
            (local.set $cEnd (i32.add (local.get $wp) (i32.const 1024)))
            (if (i32.gt_u (local.get $cEnd) (local.get $gEnd)) (then (local.set $cEnd (local.get $gEnd))))
            (local.set $dot (v128.const i32x4 0 0 0 0))
            (loop $vectors
              (local.set $q (v128.load (local.get $wp)))
              (local.set $dot
                (i32x4.add (local.get $dot)
                  (i32x4.add
                    (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $q)) (v128.load offset=0 (local.get $xp)))
                    (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $q)) (v128.load offset=16 (local.get $xp))))))
              (local.set $wp (i32.add (local.get $wp) (i32.const 16)))
              (local.set $xp (i32.add (local.get $xp) (i32.const 32)))
              (br_if $vectors (i32.lt_u (local.get $wp) (local.get $cEnd))))
            (local.set $part (f32x4.add (local.get $part) (f32x4.convert_i32x4_s (local.get $dot))))
            (br_if $chunks (i32.lt_u (local.get $wp) (local.get $gEnd))))
          (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $part) (v128.load32_splat (local.get $s)))))
          (local.set $s (i32.add (local.get $s) (i32.const 4)))
          (br_if $groups (i32.lt_u (local.get $wp) (local.get $rEnd))))
        (f32.store
          (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $n) (local.get $ldo)) (local.get $r)) (i32.const 2)))
          (f32.mul (call $sum (local.get $acc)) (f32.load (i32.add (local.get $xs) (i32.shl (local.get $n) (i32.const 2))))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br_if $rows_w (i32.lt_u (local.get $r) (local.get $R))))
      ;; the next x row reads W from its start again (and its scales)
      (local.set $s (i32.sub (local.get $s) (i32.shl (i32.mul (local.get $R) (i32.div_u (local.get $K) (local.get $G))) (i32.const 2))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $rows_n (i32.lt_u (local.get $n) (local.get $N)))))

  ;; int4: nibble b of a word is element 8j + b, stored as q + 8; byte m of a 16-byte vector holds elements 2m (low
  ;; nibble) and 2m + 1 (high). So each 32 elements of x come in the order the nibbles widen to: the even elements
  ;; (0, 2, …, 30), then the odd (1, 3, …, 31). A lane gains at most 8 · 8 · 32767 a vector: a group of 4096 fits.
  (func (export "int4") (param $x i32) (param $N i32) (param $w i32) (param $s i32) (param $R i32) (param $K i32) (param $G i32) (param $out i32) (param $xs i32) (param $ldo i32)
    (local $n i32) (local $r i32) (local $xr i32) (local $xp i32) (local $wp i32) (local $gEnd i32) (local $rEnd i32)
    (local $acc v128) (local $dot v128) (local $v v128) (local $lo v128) (local $hi v128)
    (loop $rows_n
      (local.set $xr (i32.add (local.get $x) (i32.shl (i32.mul (local.get $n) (local.get $K)) (i32.const 1))))
      (local.set $r (i32.const 0))
      (local.set $wp (local.get $w))
      (loop $rows_w
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $xp (local.get $xr))
        (local.set $rEnd (i32.add (local.get $wp) (i32.shr_u (local.get $K) (i32.const 1))))
        (loop $groups
          (local.set $dot (v128.const i32x4 0 0 0 0))
          (local.set $gEnd (i32.add (local.get $wp) (i32.shr_u (local.get $G) (i32.const 1))))
          (loop $vectors
            (local.set $v (v128.load (local.get $wp)))
            (local.set $lo (i8x16.sub (v128.and (local.get $v) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)) (v128.const i8x16 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8)))
            (local.set $hi (i8x16.sub (i8x16.shr_u (local.get $v) (i32.const 4)) (v128.const i8x16 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8)))
            (local.set $dot
              (i32x4.add (local.get $dot)
                (i32x4.add
                  (i32x4.add
                    (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $lo)) (v128.load offset=0 (local.get $xp)))
                    (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $lo)) (v128.load offset=16 (local.get $xp))))
                  (i32x4.add
                    (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $hi)) (v128.load offset=32 (local.get $xp)))
                    (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $hi)) (v128.load offset=48 (local.get $xp)))))))
            (local.set $wp (i32.add (local.get $wp) (i32.const 16)))
            (local.set $xp (i32.add (local.get $xp) (i32.const 64)))
            (br_if $vectors (i32.lt_u (local.get $wp) (local.get $gEnd))))
          (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (f32x4.convert_i32x4_s (local.get $dot)) (v128.load32_splat (local.get $s)))))
          (local.set $s (i32.add (local.get $s) (i32.const 4)))
          (br_if $groups (i32.lt_u (local.get $wp) (local.get $rEnd))))
        (f32.store
          (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $n) (local.get $ldo)) (local.get $r)) (i32.const 2)))
          (f32.mul (call $sum (local.get $acc)) (f32.load (i32.add (local.get $xs) (i32.shl (local.get $n) (i32.const 2))))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br_if $rows_w (i32.lt_u (local.get $r) (local.get $R))))
      (local.set $s (i32.sub (local.get $s) (i32.shl (i32.mul (local.get $R) (i32.div_u (local.get $K) (local.get $G))) (i32.const 2))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $rows_n (i32.lt_u (local.get $n) (local.get $N)))))

  ;; bf16: element 2j is a word's low half. A bf16's bits are a float32's top 16, so widening each half to 32 bits
  ;; and shifting it up by 16 gives its value exactly. $s, $G and $xs are not read.
  (func (export "bf16") (param $x i32) (param $N i32) (param $w i32) (param $s i32) (param $R i32) (param $K i32) (param $G i32) (param $out i32) (param $xs i32) (param $ldo i32)
    (local $n i32) (local $r i32) (local $xr i32) (local $xp i32) (local $wp i32) (local $rEnd i32)
    (local $acc v128) (local $v v128)
    (loop $rows_n
      (local.set $xr (i32.add (local.get $x) (i32.shl (i32.mul (local.get $n) (local.get $K)) (i32.const 2))))
      (local.set $r (i32.const 0))
      (local.set $wp (local.get $w))
      (loop $rows_w
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $xp (local.get $xr))
        (local.set $rEnd (i32.add (local.get $wp) (i32.shl (local.get $K) (i32.const 1))))
        (loop $vectors
          (local.set $v (v128.load (local.get $wp)))
          (local.set $acc
            (f32x4.add (local.get $acc)
              (f32x4.add
                (f32x4.mul (i32x4.shl (i32x4.extend_low_i16x8_u (local.get $v)) (i32.const 16)) (v128.load offset=0 (local.get $xp)))
                (f32x4.mul (i32x4.shl (i32x4.extend_high_i16x8_u (local.get $v)) (i32.const 16)) (v128.load offset=16 (local.get $xp))))))
          (local.set $wp (i32.add (local.get $wp) (i32.const 16)))
          (local.set $xp (i32.add (local.get $xp) (i32.const 32)))
          (br_if $vectors (i32.lt_u (local.get $wp) (local.get $rEnd))))
        (f32.store
          (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $n) (local.get $ldo)) (local.get $r)) (i32.const 2)))
          (call $sum (local.get $acc)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br_if $rows_w (i32.lt_u (local.get $r) (local.get $R))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $rows_n (i32.lt_u (local.get $n) (local.get $N)))))
;; Unpacking (Dequantize on WASM, ops/dequantize.ts): a packed W [R, K] (words at $w, scales [R, K / G] at $s) into
  ;; float32 rows at $out, K apart: q · scale (int8, int4), or the bf16's own bits. Callers check the formats' vector
  ;; multiples (as for the products); each float32 is the plain loop's exactly (an exact integer times a float32 scale,
  ;; rounded once).
  (func (export "unpack_int8") (param $w i32) (param $s i32) (param $R i32) (param $K i32) (param $G i32) (param $out i32)
    (local $end i32) (local $gEnd i32) (local $scale v128) (local $q v128) (local $h v128)
    (local.set $end (i32.add (local.get $w) (i32.mul (local.get $R) (local.get $K))))
    (loop $groups
      (local.set $scale (v128.load32_splat (local.get $s)))
      (local.set $gEnd (i32.add (local.get $w) (local.get $G)))
      (loop $vectors
        (local.set $q (v128.load (local.get $w)))
        (local.set $h (i16x8.extend_low_i8x16_s (local.get $q)))
        (v128.store offset=0 (local.get $out) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $h))) (local.get $scale)))
        (v128.store offset=16 (local.get $out) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $h))) (local.get $scale)))
        (local.set $h (i16x8.extend_high_i8x16_s (local.get $q)))
        (v128.store offset=32 (local.get $out) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $h))) (local.get $scale)))
        (v128.store offset=48 (local.get $out) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $h))) (local.get $scale)))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (local.set $out (i32.add (local.get $out) (i32.const 64)))
        (br_if $vectors (i32.lt_u (local.get $w) (local.get $gEnd))))
      (local.set $s (i32.add (local.get $s) (i32.const 4)))
      (br_if $groups (i32.lt_u (local.get $w) (local.get $end)))))

  ;; int4: byte i of a 16-byte vector holds elements 2i (low nibble) and 2i + 1 (high), each stored as q + 8.
  (func (export "unpack_int4") (param $w i32) (param $s i32) (param $R i32) (param $K i32) (param $G i32) (param $out i32)
    (local $end i32) (local $gEnd i32) (local $scale v128) (local $v v128) (local $lo v128) (local $hi v128) (local $b v128) (local $h v128)
    (local.set $end (i32.add (local.get $w) (i32.shr_u (i32.mul (local.get $R) (local.get $K)) (i32.const 1))))
    (loop $groups
      (local.set $scale (v128.load32_splat (local.get $s)))
      (local.set $gEnd (i32.add (local.get $w) (i32.shr_u (local.get $G) (i32.const 1))))
      (loop $vectors
        (local.set $v (v128.load (local.get $w)))
        (local.set $lo (i8x16.sub (v128.and (local.get $v) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)) (v128.const i8x16 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8)))
        (local.set $hi (i8x16.sub (i8x16.shr_u (local.get $v) (i32.const 4)) (v128.const i8x16 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8)))
        ;; elements 0 … 15, then 16 … 31: low and high nibbles interleaved
        (local.set $b (i8x16.shuffle 0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23 (local.get $lo) (local.get $hi)))
        (local.set $h (i16x8.extend_low_i8x16_s (local.get $b)))
        (v128.store offset=0 (local.get $out) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $h))) (local.get $scale)))
        (v128.store offset=16 (local.get $out) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $h))) (local.get $scale)))
        (local.set $h (i16x8.extend_high_i8x16_s (local.get $b)))
        (v128.store offset=32 (local.get $out) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $h))) (local.get $scale)))
        (v128.store offset=48 (local.get $out) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $h))) (local.get $scale)))
        (local.set $b (i8x16.shuffle 8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31 (local.get $lo) (local.get $hi)))
        (local.set $h (i16x8.extend_low_i8x16_s (local.get $b)))
        (v128.store offset=64 (local.get $out) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $h))) (local.get $scale)))
        (v128.store offset=80 (local.get $out) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $h))) (local.get $scale)))
        (local.set $h (i16x8.extend_high_i8x16_s (local.get $b)))
        (v128.store offset=96 (local.get $out) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $h))) (local.get $scale)))
        (v128.store offset=112 (local.get $out) (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $h))) (local.get $scale)))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (local.set $out (i32.add (local.get $out) (i32.const 128)))
        (br_if $vectors (i32.lt_u (local.get $w) (local.get $gEnd))))
      (local.set $s (i32.add (local.get $s) (i32.const 4)))
      (br_if $groups (i32.lt_u (local.get $w) (local.get $end)))))

  ;; bf16: each half widened and shifted up is its float32 bits. $s and $G are not read.
  (func (export "unpack_bf16") (param $w i32) (param $s i32) (param $R i32) (param $K i32) (param $G i32) (param $out i32)
    (local $end i32) (local $v v128)
    (local.set $end (i32.add (local.get $w) (i32.shl (i32.mul (local.get $R) (local.get $K)) (i32.const 1))))
    (loop $vectors
      (local.set $v (v128.load (local.get $w)))
      (v128.store offset=0 (local.get $out) (i32x4.shl (i32x4.extend_low_i16x8_u (local.get $v)) (i32.const 16)))
      (v128.store offset=16 (local.get $out) (i32x4.shl (i32x4.extend_high_i16x8_u (local.get $v)) (i32.const 16)))
      (local.set $w (i32.add (local.get $w) (i32.const 16)))
      (local.set $out (i32.add (local.get $out) (i32.const 32)))
      (br_if $vectors (i32.lt_u (local.get $w) (local.get $end)))))

  ;; int8, the backward product (dx = dy · W): out[n, k] = Σ_r a[n, r] · W[r, k] for n < N and this call's columns
  ;; k0 ≤ k < k1, W int8 [R, K] as the forward product reads it (row r's K bytes in order; scales [R, K / G]), a float32
  ;; [N, R], out float32 [N, K]. Blocked for the caches: 256 rows of W at a time (read from memory once, then from the
  ;; second-level cache), within them 8 rows of a (their lines and those of out stay in the first-level cache whatever
  ;; the strides), within them 16 columns: two W rows at a time widened to float32 and scaled (8 vectors in registers),
  ;; and each of the 8 rows of a adds its two terms to its 16 outputs. R even; k0, k1 and G multiples of 16.
  (func (export "int8t") (param $a i32) (param $N i32) (param $w i32) (param $s i32) (param $R i32) (param $K i32) (param $G i32) (param $out i32) (param $k0 i32) (param $k1 i32)
    (local $r0 i32) (local $rEnd i32) (local $n0 i32) (local $nEnd i32) (local $c i32) (local $r i32) (local $n i32) (local $ap i32) (local $op i32)
    (local $wp i32) (local $sp i32) (local $sRow i32) (local $ra i32) (local $rk i32) (local $v v128) (local $h v128) (local $x0 v128) (local $x1 v128)
    (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128) (local $w4 v128) (local $w5 v128) (local $w6 v128) (local $w7 v128)
    (local.set $ra (i32.shl (local.get $R) (i32.const 2))) ;; bytes from one row of a to the next
    (local.set $rk (i32.shl (local.get $K) (i32.const 2))) ;; bytes from one row of out to the next
    (local.set $sRow (i32.shl (i32.div_u (local.get $K) (local.get $G)) (i32.const 2))) ;; bytes from one row of scales to the next
    ;; zero this call's columns of out
    (loop $zeroRows
      (local.set $op (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $n) (local.get $K)) (local.get $k0)) (i32.const 2))))
      (local.set $c (local.get $k0))
      (loop $zero
        (v128.store offset=0 (local.get $op) (v128.const i32x4 0 0 0 0))
        (v128.store offset=16 (local.get $op) (v128.const i32x4 0 0 0 0))
        (v128.store offset=32 (local.get $op) (v128.const i32x4 0 0 0 0))
        (v128.store offset=48 (local.get $op) (v128.const i32x4 0 0 0 0))
        (local.set $op (i32.add (local.get $op) (i32.const 64)))
        (local.set $c (i32.add (local.get $c) (i32.const 16)))
        (br_if $zero (i32.lt_u (local.get $c) (local.get $k1))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $zeroRows (i32.lt_u (local.get $n) (local.get $N))))
    (loop $wBlocks
      (local.set $rEnd (select (i32.add (local.get $r0) (i32.const 256)) (local.get $R) (i32.lt_u (i32.add (local.get $r0) (i32.const 256)) (local.get $R))))
      (local.set $n0 (i32.const 0))
      (loop $aBlocks
        (local.set $nEnd (select (i32.add (local.get $n0) (i32.const 8)) (local.get $N) (i32.lt_u (i32.add (local.get $n0) (i32.const 8)) (local.get $N))))
        (local.set $c (local.get $k0))
        (loop $tiles
          (local.set $wp (i32.add (local.get $w) (i32.add (i32.mul (local.get $r0) (local.get $K)) (local.get $c))))
          (local.set $sp (i32.add (local.get $s) (i32.add (i32.mul (local.get $r0) (local.get $sRow)) (i32.shl (i32.div_u (local.get $c) (local.get $G)) (i32.const 2)))))
          (local.set $r (local.get $r0))
          (loop $rows
            (local.set $v (v128.load (local.get $wp)))
            (local.set $h (i16x8.extend_low_i8x16_s (local.get $v)))
            (local.set $w0 (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $h))) (v128.load32_splat (local.get $sp))))
            (local.set $w1 (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $h))) (v128.load32_splat (local.get $sp))))
            (local.set $h (i16x8.extend_high_i8x16_s (local.get $v)))
            (local.set $w2 (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $h))) (v128.load32_splat (local.get $sp))))
            (local.set $w3 (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $h))) (v128.load32_splat (local.get $sp))))
            (local.set $v (v128.load (i32.add (local.get $wp) (local.get $K))))
            (local.set $h (i16x8.extend_low_i8x16_s (local.get $v)))
            (local.set $w4 (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $h))) (v128.load32_splat (i32.add (local.get $sp) (local.get $sRow)))))
            (local.set $w5 (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $h))) (v128.load32_splat (i32.add (local.get $sp) (local.get $sRow)))))
            (local.set $h (i16x8.extend_high_i8x16_s (local.get $v)))
            (local.set $w6 (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $h))) (v128.load32_splat (i32.add (local.get $sp) (local.get $sRow)))))
            (local.set $w7 (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $h))) (v128.load32_splat (i32.add (local.get $sp) (local.get $sRow)))))
            (local.set $ap (i32.add (local.get $a) (i32.shl (i32.add (i32.mul (local.get $n0) (local.get $R)) (local.get $r)) (i32.const 2))))
            (local.set $op (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $n0) (local.get $K)) (local.get $c)) (i32.const 2))))
            (local.set $n (local.get $n0))
            (loop $outs
              (local.set $x0 (v128.load32_splat (local.get $ap)))
              (local.set $x1 (v128.load32_splat offset=4 (local.get $ap)))
              (v128.store offset=0 (local.get $op)
                (f32x4.add (v128.load offset=0 (local.get $op))
                  (f32x4.add (f32x4.mul (local.get $x0) (local.get $w0)) (f32x4.mul (local.get $x1) (local.get $w4)))))
              (v128.store offset=16 (local.get $op)
                (f32x4.add (v128.load offset=16 (local.get $op))
                  (f32x4.add (f32x4.mul (local.get $x0) (local.get $w1)) (f32x4.mul (local.get $x1) (local.get $w5)))))
              (v128.store offset=32 (local.get $op)
                (f32x4.add (v128.load offset=32 (local.get $op))
                  (f32x4.add (f32x4.mul (local.get $x0) (local.get $w2)) (f32x4.mul (local.get $x1) (local.get $w6)))))
              (v128.store offset=48 (local.get $op)
                (f32x4.add (v128.load offset=48 (local.get $op))
                  (f32x4.add (f32x4.mul (local.get $x0) (local.get $w3)) (f32x4.mul (local.get $x1) (local.get $w7)))))
              (local.set $ap (i32.add (local.get $ap) (local.get $ra)))
              (local.set $op (i32.add (local.get $op) (local.get $rk)))
              (local.set $n (i32.add (local.get $n) (i32.const 1)))
              (br_if $outs (i32.lt_u (local.get $n) (local.get $nEnd))))
            (local.set $wp (i32.add (local.get $wp) (i32.shl (local.get $K) (i32.const 1))))
            (local.set $sp (i32.add (local.get $sp) (i32.shl (local.get $sRow) (i32.const 1))))
            (local.set $r (i32.add (local.get $r) (i32.const 2)))
            (br_if $rows (i32.lt_u (local.get $r) (local.get $rEnd))))
          (local.set $c (i32.add (local.get $c) (i32.const 16)))
          (br_if $tiles (i32.lt_u (local.get $c) (local.get $k1))))
        (local.set $n0 (local.get $nEnd))
        (br_if $aBlocks (i32.lt_u (local.get $n0) (local.get $N))))
      (local.set $r0 (local.get $rEnd))
      (br_if $wBlocks (i32.lt_u (local.get $r0) (local.get $R)))))

  ;; x float32 [N, K] → q int16 [N, K], each row rounded against its own absmax: q = nearest(x · 32767 / absmax), and
  ;; xs[n] = absmax / 32767 (a row of zeros: q 0, xs 0), the int8 product's x (packed-matmul-simd.ts). A row holding NaN
  ;; or ±Infinity gets xs = NaN and no q: the caller then multiplies in float32. K a multiple of 8.
  (func (export "round16") (param $x i32) (param $N i32) (param $K i32) (param $q i32) (param $xs i32)
    (local $p i32) (local $end i32) (local $m v128) (local $amax f32) (local $inv v128)
    (if (i32.eqz (local.get $N)) (then (return)))
    (loop $rows
      (local.set $end (i32.add (local.get $x) (i32.shl (local.get $K) (i32.const 2))))
      (local.set $m (v128.const i32x4 0 0 0 0))
      (local.set $p (local.get $x))
      (loop $max
        (local.set $m (f32x4.max (local.get $m) (f32x4.abs (v128.load (local.get $p)))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br_if $max (i32.lt_u (local.get $p) (local.get $end))))
      (local.set $amax
        (f32.max
          (f32.max (f32x4.extract_lane 0 (local.get $m)) (f32x4.extract_lane 1 (local.get $m)))
          (f32.max (f32x4.extract_lane 2 (local.get $m)) (f32x4.extract_lane 3 (local.get $m)))))
      (if (f32.lt (local.get $amax) (f32.const inf)) ;; false for NaN and +Infinity
        (then
          (f32.store (local.get $xs) (f32.div (local.get $amax) (f32.const 32767)))
          (local.set $inv
            (f32x4.splat (select (f32.div (f32.const 32767) (local.get $amax)) (f32.const 0) (f32.gt (local.get $amax) (f32.const 0)))))
          (local.set $p (local.get $x))
          (loop $round
            (v128.store (local.get $q)
              (i16x8.narrow_i32x4_s
                (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.mul (v128.load (local.get $p)) (local.get $inv))))
                (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.mul (v128.load offset=16 (local.get $p)) (local.get $inv))))))
            (local.set $p (i32.add (local.get $p) (i32.const 32)))
            (local.set $q (i32.add (local.get $q) (i32.const 16)))
            (br_if $round (i32.lt_u (local.get $p) (local.get $end)))))
        (else
          (f32.store (local.get $xs) (f32.const nan))
          (local.set $q (i32.add (local.get $q) (i32.shl (local.get $K) (i32.const 1))))))
      (local.set $x (local.get $end))
      (local.set $xs (i32.add (local.get $xs) (i32.const 4)))
      (local.set $N (i32.sub (local.get $N) (i32.const 1)))
      (br_if $rows (local.get $N))))

  ;; float32 [R, K] at $src → its transpose at $out, whose rows are $ldo elements apart: out[k · ldo + r] = src[r, k].
  ;; R and K multiples of 4: 4 × 4 blocks transposed in registers. Rows go in bands of 16 while 16 remain (then 4), and
  ;; each 4-column step does the band's blocks one under another, so it writes 64 consecutive bytes (a whole cache line,
  ;; on most machines) into each of 4 output rows, where 4 rows at a time wrote 16 bytes of a line and came back for
  ;; the rest after a whole sweep of the output.
  (func (export "transpose4") (param $src i32) (param $R i32) (param $K i32) (param $out i32) (param $ldo i32)
    (local $r i32) (local $h i32) (local $k i32) (local $j i32) (local $row i32) (local $ob i32) (local $p i32) (local $o i32)
    (local $kb i32) (local $kb2 i32) (local $kb3 i32) (local $ld i32) (local $ld2 i32) (local $ld3 i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $u0 v128) (local $u1 v128) (local $u2 v128) (local $u3 v128)
    (local.set $kb (i32.shl (local.get $K) (i32.const 2)))
    (local.set $kb2 (i32.shl (local.get $kb) (i32.const 1)))
    (local.set $kb3 (i32.add (local.get $kb2) (local.get $kb)))
    (local.set $ld (i32.shl (local.get $ldo) (i32.const 2)))
    (local.set $ld2 (i32.shl (local.get $ld) (i32.const 1)))
    (local.set $ld3 (i32.add (local.get $ld2) (local.get $ld)))
    (loop $bands
      (local.set $h (select (i32.const 16) (i32.const 4) (i32.le_u (i32.add (local.get $r) (i32.const 16)) (local.get $R))))
      (local.set $row (i32.add (local.get $src) (i32.mul (local.get $r) (local.get $kb))))
      (local.set $ob (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2))))
      (local.set $k (i32.const 0))
      (loop $cols
        (local.set $j (i32.const 0))
        (loop $blocks
          (local.set $p (i32.add (local.get $row) (i32.mul (local.get $j) (local.get $kb))))
          (local.set $o (i32.add (local.get $ob) (i32.shl (local.get $j) (i32.const 2))))
          (local.set $a0 (v128.load (local.get $p)))
          (local.set $a1 (v128.load (i32.add (local.get $p) (local.get $kb))))
          (local.set $a2 (v128.load (i32.add (local.get $p) (local.get $kb2))))
          (local.set $a3 (v128.load (i32.add (local.get $p) (local.get $kb3))))
          (local.set $u0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a0) (local.get $a1)))
          (local.set $u1 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a2) (local.get $a3)))
          (local.set $u2 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a0) (local.get $a1)))
          (local.set $u3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a2) (local.get $a3)))
          (v128.store (local.get $o) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $u0) (local.get $u1)))
          (v128.store (i32.add (local.get $o) (local.get $ld)) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $u0) (local.get $u1)))
          (v128.store (i32.add (local.get $o) (local.get $ld2)) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $u2) (local.get $u3)))
          (v128.store (i32.add (local.get $o) (local.get $ld3)) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $u2) (local.get $u3)))
          (local.set $j (i32.add (local.get $j) (i32.const 4)))
          (br_if $blocks (i32.lt_u (local.get $j) (local.get $h))))
        (local.set $row (i32.add (local.get $row) (i32.const 16)))
        (local.set $ob (i32.add (local.get $ob) (i32.shl (local.get $ld) (i32.const 2))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br_if $cols (i32.lt_u (local.get $k) (local.get $K))))
      (local.set $r (i32.add (local.get $r) (local.get $h)))
      (br_if $bands (i32.lt_u (local.get $r) (local.get $R)))))

  ;; float32 products (BatchMatMul on WASM: ops/wasm-matmul.ts): for each entry e0 ≤ e < e1 of a batch, out[e, n, k] =
  ;; Σ_r a[e, n, r] · b[e, r, k] for n < N and this call's columns k0 ≤ k < k1; a [E, N, R], b [E, R, K] and out
  ;; [E, N, K] with their rows packed. int8t's blocking with b in float32: 256 rows of b at a time, within them 8 rows of
  ;; a, within them 16 columns (then 4, then one at a time), two rows of b held in registers while each row of a adds its
  ;; two terms (an odd R's last row then adds its one). Each value is summed in the same order whatever the call's rows
  ;; and columns: pairs of rows of b in order, then an odd last one. N ≥ 1; k0 a multiple of 4.
  (func (export "f32mm") (param $a i32) (param $N i32) (param $b i32) (param $R i32) (param $K i32) (param $out i32) (param $k0 i32) (param $k1 i32) (param $e0 i32) (param $e1 i32)
    (local $ae i32) (local $be i32) (local $oe i32) (local $r0 i32) (local $rEnd i32) (local $n0 i32) (local $nEnd i32) (local $c i32) (local $r i32)
    (local $n i32) (local $ap i32) (local $op i32) (local $bp i32) (local $ra i32) (local $rk i32) (local $x0 v128) (local $x1 v128)
    (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128) (local $w4 v128) (local $w5 v128) (local $w6 v128) (local $w7 v128)
    (local.set $ra (i32.shl (local.get $R) (i32.const 2))) ;; bytes from one row of a to the next
    (local.set $rk (i32.shl (local.get $K) (i32.const 2))) ;; bytes from one row of b (and of out) to the next
    (block $done
      (br_if $done (i32.ge_u (local.get $e0) (local.get $e1)))
      (loop $entries
        (local.set $ae (i32.add (local.get $a) (i32.mul (i32.mul (local.get $e0) (local.get $N)) (local.get $ra))))
        (local.set $be (i32.add (local.get $b) (i32.mul (i32.mul (local.get $e0) (local.get $R)) (local.get $rk))))
        (local.set $oe (i32.add (local.get $out) (i32.mul (i32.mul (local.get $e0) (local.get $N)) (local.get $rk))))
        ;; zero this call's columns of the entry's out
        (local.set $n (i32.const 0))
        (loop $zeroRows
          (local.set $op (i32.add (local.get $oe) (i32.shl (i32.add (i32.mul (local.get $n) (local.get $K)) (local.get $k0)) (i32.const 2))))
          (local.set $c (local.get $k0))
          (block $zeroed
            (loop $zero
              (br_if $zeroed (i32.ge_u (local.get $c) (local.get $k1)))
              (if (i32.le_u (i32.add (local.get $c) (i32.const 4)) (local.get $k1))
                (then
                  (v128.store (local.get $op) (v128.const i32x4 0 0 0 0))
                  (local.set $op (i32.add (local.get $op) (i32.const 16)))
                  (local.set $c (i32.add (local.get $c) (i32.const 4))))
                (else
                  (f32.store (local.get $op) (f32.const 0))
                  (local.set $op (i32.add (local.get $op) (i32.const 4)))
                  (local.set $c (i32.add (local.get $c) (i32.const 1)))))
              (br $zero)))
          (local.set $n (i32.add (local.get $n) (i32.const 1)))
          (br_if $zeroRows (i32.lt_u (local.get $n) (local.get $N))))
        (local.set $r0 (i32.const 0))
        (loop $bBlocks
          (local.set $rEnd (select (i32.add (local.get $r0) (i32.const 256)) (local.get $R) (i32.lt_u (i32.add (local.get $r0) (i32.const 256)) (local.get $R))))
          (local.set $n0 (i32.const 0))
          (loop $aBlocks
            (local.set $nEnd (select (i32.add (local.get $n0) (i32.const 8)) (local.get $N) (i32.lt_u (i32.add (local.get $n0) (i32.const 8)) (local.get $N))))
            (local.set $c (local.get $k0))
            (block $wideDone
              (loop $wide
                (br_if $wideDone (i32.gt_u (i32.add (local.get $c) (i32.const 16)) (local.get $k1)))
                (local.set $bp (i32.add (local.get $be) (i32.add (i32.mul (local.get $r0) (local.get $rk)) (i32.shl (local.get $c) (i32.const 2)))))
                (local.set $r (local.get $r0))
                (block $pairsDone
                (loop $rows
                  (br_if $pairsDone (i32.gt_u (i32.add (local.get $r) (i32.const 2)) (local.get $rEnd)))
                  (local.set $w0 (v128.load offset=0 (local.get $bp)))
                  (local.set $w1 (v128.load offset=16 (local.get $bp)))
                  (local.set $w2 (v128.load offset=32 (local.get $bp)))
                  (local.set $w3 (v128.load offset=48 (local.get $bp)))
                  (local.set $w4 (v128.load offset=0 (i32.add (local.get $bp) (local.get $rk))))
                  (local.set $w5 (v128.load offset=16 (i32.add (local.get $bp) (local.get $rk))))
                  (local.set $w6 (v128.load offset=32 (i32.add (local.get $bp) (local.get $rk))))
                  (local.set $w7 (v128.load offset=48 (i32.add (local.get $bp) (local.get $rk))))
                  (local.set $ap (i32.add (local.get $ae) (i32.shl (i32.add (i32.mul (local.get $n0) (local.get $R)) (local.get $r)) (i32.const 2))))
                  (local.set $op (i32.add (local.get $oe) (i32.shl (i32.add (i32.mul (local.get $n0) (local.get $K)) (local.get $c)) (i32.const 2))))
                  (local.set $n (local.get $n0))
                  (loop $outs
                    (local.set $x0 (v128.load32_splat (local.get $ap)))
                    (local.set $x1 (v128.load32_splat offset=4 (local.get $ap)))
                    (v128.store offset=0 (local.get $op)
                      (f32x4.add (v128.load offset=0 (local.get $op))
                        (f32x4.add (f32x4.mul (local.get $x0) (local.get $w0)) (f32x4.mul (local.get $x1) (local.get $w4)))))
                    (v128.store offset=16 (local.get $op)
                      (f32x4.add (v128.load offset=16 (local.get $op))
                        (f32x4.add (f32x4.mul (local.get $x0) (local.get $w1)) (f32x4.mul (local.get $x1) (local.get $w5)))))
                    (v128.store offset=32 (local.get $op)
                      (f32x4.add (v128.load offset=32 (local.get $op))
                        (f32x4.add (f32x4.mul (local.get $x0) (local.get $w2)) (f32x4.mul (local.get $x1) (local.get $w6)))))
                    (v128.store offset=48 (local.get $op)
                      (f32x4.add (v128.load offset=48 (local.get $op))
                        (f32x4.add (f32x4.mul (local.get $x0) (local.get $w3)) (f32x4.mul (local.get $x1) (local.get $w7)))))
                    (local.set $ap (i32.add (local.get $ap) (local.get $ra)))
                    (local.set $op (i32.add (local.get $op) (local.get $rk)))
                    (local.set $n (i32.add (local.get $n) (i32.const 1)))
                    (br_if $outs (i32.lt_u (local.get $n) (local.get $nEnd))))
                  (local.set $bp (i32.add (local.get $bp) (i32.shl (local.get $rk) (i32.const 1))))
                  (local.set $r (i32.add (local.get $r) (i32.const 2)))
                  (br $rows)))
                ;; an odd R's last row alone
                (if (i32.lt_u (local.get $r) (local.get $rEnd))
                  (then
                    (local.set $w0 (v128.load offset=0 (local.get $bp)))
                    (local.set $w1 (v128.load offset=16 (local.get $bp)))
                    (local.set $w2 (v128.load offset=32 (local.get $bp)))
                    (local.set $w3 (v128.load offset=48 (local.get $bp)))
                    (local.set $ap (i32.add (local.get $ae) (i32.shl (i32.add (i32.mul (local.get $n0) (local.get $R)) (local.get $r)) (i32.const 2))))
                    (local.set $op (i32.add (local.get $oe) (i32.shl (i32.add (i32.mul (local.get $n0) (local.get $K)) (local.get $c)) (i32.const 2))))
                    (local.set $n (local.get $n0))
                    (loop $outs1
                      (local.set $x0 (v128.load32_splat (local.get $ap)))
                      (v128.store offset=0 (local.get $op) (f32x4.add (v128.load offset=0 (local.get $op)) (f32x4.mul (local.get $x0) (local.get $w0))))
                      (v128.store offset=16 (local.get $op) (f32x4.add (v128.load offset=16 (local.get $op)) (f32x4.mul (local.get $x0) (local.get $w1))))
                      (v128.store offset=32 (local.get $op) (f32x4.add (v128.load offset=32 (local.get $op)) (f32x4.mul (local.get $x0) (local.get $w2))))
                      (v128.store offset=48 (local.get $op) (f32x4.add (v128.load offset=48 (local.get $op)) (f32x4.mul (local.get $x0) (local.get $w3))))
                      (local.set $ap (i32.add (local.get $ap) (local.get $ra)))
                      (local.set $op (i32.add (local.get $op) (local.get $rk)))
                      (local.set $n (i32.add (local.get $n) (i32.const 1)))
                      (br_if $outs1 (i32.lt_u (local.get $n) (local.get $nEnd))))))
                (local.set $c (i32.add (local.get $c) (i32.const 16)))
                (br $wide)))
            (block $narrowDone
              (loop $narrow
                (br_if $narrowDone (i32.gt_u (i32.add (local.get $c) (i32.const 4)) (local.get $k1)))
                (local.set $bp (i32.add (local.get $be) (i32.add (i32.mul (local.get $r0) (local.get $rk)) (i32.shl (local.get $c) (i32.const 2)))))
                (local.set $r (local.get $r0))
                (block $pairs4Done
                (loop $rows4
                  (br_if $pairs4Done (i32.gt_u (i32.add (local.get $r) (i32.const 2)) (local.get $rEnd)))
                  (local.set $w0 (v128.load (local.get $bp)))
                  (local.set $w4 (v128.load (i32.add (local.get $bp) (local.get $rk))))
                  (local.set $ap (i32.add (local.get $ae) (i32.shl (i32.add (i32.mul (local.get $n0) (local.get $R)) (local.get $r)) (i32.const 2))))
                  (local.set $op (i32.add (local.get $oe) (i32.shl (i32.add (i32.mul (local.get $n0) (local.get $K)) (local.get $c)) (i32.const 2))))
                  (local.set $n (local.get $n0))
                  (loop $outs4
                    (v128.store (local.get $op)
                      (f32x4.add (v128.load (local.get $op))
                        (f32x4.add (f32x4.mul (v128.load32_splat (local.get $ap)) (local.get $w0))
                          (f32x4.mul (v128.load32_splat offset=4 (local.get $ap)) (local.get $w4)))))
                    (local.set $ap (i32.add (local.get $ap) (local.get $ra)))
                    (local.set $op (i32.add (local.get $op) (local.get $rk)))
                    (local.set $n (i32.add (local.get $n) (i32.const 1)))
                    (br_if $outs4 (i32.lt_u (local.get $n) (local.get $nEnd))))
                  (local.set $bp (i32.add (local.get $bp) (i32.shl (local.get $rk) (i32.const 1))))
                  (local.set $r (i32.add (local.get $r) (i32.const 2)))
                  (br $rows4)))
                (if (i32.lt_u (local.get $r) (local.get $rEnd))
                  (then
                    (local.set $w0 (v128.load (local.get $bp)))
                    (local.set $ap (i32.add (local.get $ae) (i32.shl (i32.add (i32.mul (local.get $n0) (local.get $R)) (local.get $r)) (i32.const 2))))
                    (local.set $op (i32.add (local.get $oe) (i32.shl (i32.add (i32.mul (local.get $n0) (local.get $K)) (local.get $c)) (i32.const 2))))
                    (local.set $n (local.get $n0))
                    (loop $outs41
                      (v128.store (local.get $op) (f32x4.add (v128.load (local.get $op)) (f32x4.mul (v128.load32_splat (local.get $ap)) (local.get $w0))))
                      (local.set $ap (i32.add (local.get $ap) (local.get $ra)))
                      (local.set $op (i32.add (local.get $op) (local.get $rk)))
                      (local.set $n (i32.add (local.get $n) (i32.const 1)))
                      (br_if $outs41 (i32.lt_u (local.get $n) (local.get $nEnd))))))
                (local.set $c (i32.add (local.get $c) (i32.const 4)))
                (br $narrow)))
            ;; the last K mod 4 columns one at a time, each sum in the same order as a vector lane's (so a column's
            ;; value does not depend on where the call's columns end)
            (block $tailDone
              (loop $tail
                (br_if $tailDone (i32.ge_u (local.get $c) (local.get $k1)))
                (local.set $n (local.get $n0))
                (loop $tailRows
                  (local.set $op (i32.add (local.get $oe) (i32.shl (i32.add (i32.mul (local.get $n) (local.get $K)) (local.get $c)) (i32.const 2))))
                  (local.set $ap (i32.add (local.get $ae) (i32.shl (i32.add (i32.mul (local.get $n) (local.get $R)) (local.get $r0)) (i32.const 2))))
                  (local.set $bp (i32.add (local.get $be) (i32.add (i32.mul (local.get $r0) (local.get $rk)) (i32.shl (local.get $c) (i32.const 2)))))
                  (local.set $r (local.get $r0))
                  (block $tailPairsDone
                  (loop $tailSum
                    (br_if $tailPairsDone (i32.gt_u (i32.add (local.get $r) (i32.const 2)) (local.get $rEnd)))
                    (f32.store (local.get $op)
                      (f32.add (f32.load (local.get $op))
                        (f32.add (f32.mul (f32.load (local.get $ap)) (f32.load (local.get $bp)))
                          (f32.mul (f32.load offset=4 (local.get $ap)) (f32.load (i32.add (local.get $bp) (local.get $rk)))))))
                    (local.set $ap (i32.add (local.get $ap) (i32.const 8)))
                    (local.set $bp (i32.add (local.get $bp) (i32.shl (local.get $rk) (i32.const 1))))
                    (local.set $r (i32.add (local.get $r) (i32.const 2)))
                    (br $tailSum)))
                  (if (i32.lt_u (local.get $r) (local.get $rEnd))
                    (then (f32.store (local.get $op) (f32.add (f32.load (local.get $op)) (f32.mul (f32.load (local.get $ap)) (f32.load (local.get $bp)))))))
                  (local.set $n (i32.add (local.get $n) (i32.const 1)))
                  (br_if $tailRows (i32.lt_u (local.get $n) (local.get $nEnd))))
                (local.set $c (i32.add (local.get $c) (i32.const 1)))
                (br $tail)))
            (local.set $n0 (local.get $nEnd))
            (br_if $aBlocks (i32.lt_u (local.get $n0) (local.get $N))))
          (local.set $r0 (local.get $rEnd))
          (br_if $bBlocks (i32.lt_u (local.get $r0) (local.get $R))))
        (local.set $e0 (i32.add (local.get $e0) (i32.const 1)))
        (br_if $entries (i32.lt_u (local.get $e0) (local.get $e1))))))

  ;; Attention, one query row of one head (ops/attention.ts calls these per row and head, with the softmax between
  ;; them in JS): D is a multiple of 4; k and v rows are $stride bytes apart (the cache's [B, S, KVH, D] layout).
  ;; scores: out[s] = scale · Σ_d q[d] · k[s, d] for s < $count.
  (func (export "scores") (param $q i32) (param $k i32) (param $stride i32) (param $D i32) (param $count i32) (param $out i32) (param $scale f32)
    (local $end i32) (local $qp i32) (local $kp i32) (local $acc v128)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $count) (i32.const 2))))
    (loop $keys
      (local.set $acc (v128.const i32x4 0 0 0 0))
      (local.set $qp (local.get $q))
      (local.set $kp (local.get $k))
      (loop $vectors
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (v128.load (local.get $qp)) (v128.load (local.get $kp)))))
        (local.set $qp (i32.add (local.get $qp) (i32.const 16)))
        (local.set $kp (i32.add (local.get $kp) (i32.const 16)))
        (br_if $vectors (i32.lt_u (local.get $qp) (i32.add (local.get $q) (i32.shl (local.get $D) (i32.const 2))))))
      (f32.store (local.get $out) (f32.mul (call $sum (local.get $acc)) (local.get $scale)))
      (local.set $k (i32.add (local.get $k) (local.get $stride)))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br_if $keys (i32.lt_u (local.get $out) (local.get $end)))))

  ;; values: out[d] = Σ_s p[s] · v[s, d] for s < $count (p already normalized), D values written.
  (func (export "values") (param $p i32) (param $v i32) (param $stride i32) (param $D i32) (param $count i32) (param $out i32)
    (local $end i32) (local $pEnd i32) (local $op i32) (local $vp i32) (local $w v128)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $D) (i32.const 2))))
    (local.set $op (local.get $out))
    (loop $zero
      (v128.store (local.get $op) (v128.const i32x4 0 0 0 0))
      (local.set $op (i32.add (local.get $op) (i32.const 16)))
      (br_if $zero (i32.lt_u (local.get $op) (local.get $end))))
    (local.set $pEnd (i32.add (local.get $p) (i32.shl (local.get $count) (i32.const 2))))
    (loop $keys
      (local.set $w (v128.load32_splat (local.get $p)))
      (local.set $op (local.get $out))
      (local.set $vp (local.get $v))
      (loop $vectors
        (v128.store (local.get $op) (f32x4.add (v128.load (local.get $op)) (f32x4.mul (local.get $w) (v128.load (local.get $vp)))))
        (local.set $op (i32.add (local.get $op) (i32.const 16)))
        (local.set $vp (i32.add (local.get $vp) (i32.const 16)))
        (br_if $vectors (i32.lt_u (local.get $op) (local.get $end))))
      (local.set $v (i32.add (local.get $v) (local.get $stride)))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (br_if $keys (i32.lt_u (local.get $p) (local.get $pEnd)))))
)
