"""Where each published run and model shape comes from: the citations the runs carry (``PublishedRun.source``)."""

NARAYANAN = (
    "Narayanan et al., Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM, "
    "SC'21, Table 1 (A100-80GB, seq 2048, vocab 51200, full recompute)"
)
KORTHIKANTI = (
    "Korthikanti et al., Reducing Activation Recomputation in Large Transformer Models, 2022, "
    "Tables 3 and 5 (A100-80GB, seq 2048, vocab 51200, micro-batch 1)"
)
SHOEYBI = (
    "Shoeybi et al., Megatron-LM: Training Multi-Billion Parameter Language Models Using Model Parallelism, 2019, "
    "Table 1 and §5.1 (DGX-2H V100 32GB; 1.2B on one GPU at 39 TF/s; 8.3B on 512 GPUs, 8-way model parallel, "
    "15.1 PF/s; seq 1024, vocab 51200, activation checkpointing)"
)
SMITH = (
    "Smith et al., Using DeepSpeed and Megatron to Train Megatron-Turing NLG 530B, 2022, system-throughput "
    "table (280/350/420 DGX A100 nodes: 60.1/50.2/44.4 s per iteration, batch 1920, seq 2048, TP8 PP35)"
)
LLAMA3 = (
    "Llama Team, The Llama 3 Herd of Models, 2024: Table 3 (405B: 126 layers, model dimension 16,384, FFN "
    "53,248, 128 heads, 8 KV heads, vocabulary 128,000, SwiGLU) and Table 4 (H100, BF16: TP8 CP1 PP16 DP64 "
    "on 8,192 GPUs at 430 TF/GPU; DP128 on 16,384 at 400; TP8 CP16 PP16 DP8, sequence 131,072, at 380; "
    "16M tokens per batch)"
)
LLAMA1 = (
    "Touvron et al., LLaMA: Open and Efficient Foundation Language Models, 2023: Table 2 (shapes; 1.0T tokens "
    "for 6.7B/13B, 1.4T for 32.5B/65.2B; 4M-token batches, seq 2048), §2.4 (65B on 2048 A100-80GB at 380 "
    "tokens/s/GPU) and Table 15 (GPU-hours 82,432 / 135,168 / 530,432 / 1,022,362)"
)
LLAMA2 = (
    "Touvron et al., Llama 2: Open Foundation and Fine-Tuned Chat Models, 2023: Table 1 (2.0T tokens, seq 4096, "
    "GQA for 34B and 70B), §2.2 (4M-token batches) and Table 2 (A100-80GB GPU-hours 184,320 / 368,640 / "
    "1,038,336 / 1,720,320)"
)
MPT = (
    "MosaicML, Introducing MPT-7B, 2023 (blog): 1T tokens on 440 A100-40GB in 9.5 days; 32 layers, d_model "
    "4096, 32 heads, seq 2048, FSDP, FlashAttention"
)
DEEPSEEK_V2 = (
    "DeepSeek-AI, DeepSeek-V2, 2024: §2-3 (60 layers, d 5120, 128 heads of 128, MLA kv 512 q 1536 rope 64, "
    "2 shared + 160 routed experts of 1536, top-6, first layer dense; batch 9216 x 4096; 16-way zero-bubble PP, "
    "8-way EP, ZeRO-1, no TP) and §3.2.3 (H800: 172.8K GPU-hours per trillion tokens; DeepSeek 67B 300.6K)"
)
DEEPSEEK_LLM = (
    "DeepSeek-AI, DeepSeek LLM, 2024: Table 2 (67B: 95 layers, d 8192, 64 heads, 8 KV heads, FFN 22016, "
    "vocab 102400, seq 4096, batch 4608); its H800 rate, 300.6K GPU-hours per trillion tokens, from "
    "DeepSeek-V2 §3.2.3"
)
DEEPSEEK_V3 = (
    "DeepSeek-AI, DeepSeek-V3 Technical Report, 2024: §4.2 (61 layers, d 7168, 128 heads of 128, MLA kv 512 "
    "q 1536 rope 64, 1 shared + 256 routed experts of 2048, top-8, first 3 layers dense FFN 18432, vocab "
    "129,280, seq 4096, batch 15360), §3.2 (2048 H800, PP16, EP64, ZeRO-1, FP8) and Table 1 / §1 (180K "
    "H800 GPU-hours per trillion tokens)"
)

NEMO_2407 = (
    "NVIDIA NeMo Framework performance summary, NeMo 24.07 container, DGX-H100, FP8 (NVIDIA/NeMo "
    "docs/source/performance/performance_summary.md, pre-training table): #GPUs, GBS, MBS, sequence length, "
    "TP/PP/CP/VP, tokens/s/GPU and model TFLOP/s/GPU per model"
)
BRIDGE_2511 = (
    "NVIDIA Megatron-Bridge performance summary, 25.11 NeMo container (NVIDIA-NeMo/Megatron-Bridge "
    "docs/performance-summary.md, pre-training tables for DGX-H100, DGX-B200, DGX-GB200): #GPUs, precision, GBS, "
    "MBS, sequence length, FSDP, TP/PP/CP/VP/EP, tokens/s/GPU and model TFLOP/s/GPU; MoE runs force-balance the "
    "tokens over experts and drop none"
)
NEMOTRON4 = (
    "NVIDIA, Nemotron-4 340B Technical Report, 2024: 768 DGX H100 nodes; Table 2, the longest stage (7.6T "
    "tokens): 6144 GPUs, batch 2304 x 4096, 8.0 s per iteration, MFU ~41% of the 989 TF BF16 peak (as quoted by "
    "Epoch AI, aiportalx.com/nvidia/nemotron-4-340b); shape from the released model_config.yaml: 96 layers, "
    "hidden 18432, 96 heads, 8 KV groups, FFN 73728 (one FFN input, not gated), vocabulary 256,000"
)
QWEN3 = (
    "Qwen3 MoE configurations (Qwen/Qwen3-235B-A22B: 94 layers, hidden 4096, 64 query heads of 128, 4 KV heads, "
    "128 experts of 1536, top-8, vocabulary 151,936; Qwen3-30B-A3B: 48 layers, hidden 2048, 32 heads of 128, 4 KV "
    "heads, 128 experts of 768, top-8)"
)
GPT3_SHAPE = "Brown et al. 2020, Table 2.1 (GPT-3 175B: 96 layers, d_model 12,288, 96 heads, context 2,048)"
LLAMA3_SHAPES = (
    "Llama 3 8B / 70B shapes (Llama 3 paper Table 3 and the released configs): 32 / 80 layers, hidden 4096 / 8192, "
    "FFN 14,336 / 28,672, 32 / 64 heads, 8 KV heads, vocabulary 128,256"
)
BLOOM = (
    "BigScience, BLOOM: A 176B-Parameter Open-Access Multilingual Language Model, 2022 (arXiv 2211.05100): 384 "
    "A100-80GB on Jean Zay (48 nodes), Megatron-DeepSpeed, bf16; 70 layers, hidden 14,336, 112 heads, sequence "
    "2,048, vocabulary 250,680, global batch 2,048; 366B tokens; 1,082,990 compute hours (as summarised at "
    "ai-papers.xuzou.cn/papers/bloom_2022); BigScience model page: one copy of the model takes 48 GPUs, training "
    "throughput about 150 TFLOPs (bigscience.notion.site); Hugging Face blog 'The Technology Behind BLOOM "
    "Training' (2022): checkpoint every ~3 h = 100 iterations, no sequence parallelism, embedding counted as a "
    "pipeline layer; the run's script, github.com/bigscience-workshop/bigscience train/tr11-176B-ml/"
    "tr11-176B-ml.slurm: TP_SIZE=4, PP_SIZE=12, MICRO_BATCH_SIZE=2, GLOBAL_BATCH_SIZE=2048, --checkpoint-activations, "
    "--pad-vocab-size-to 250880, --rampup-batch-size 192 16 9_765_625, ZERO_STAGE=0 (bf16 optimizer's own ZeRO-1), "
    "CUDA_LAUNCH_BLOCKING=1"
)
NEOX = (
    "Black et al., GPT-NeoX-20B: An Open-Source Autoregressive Language Model, 2022: 12 servers of 8 A100-SXM4-40GB "
    "(96 GPUs), GPT-NeoX (Megatron + DeepSpeed), fp16, ZeRO; 44 layers, d_model 6,144, d_ff 24,576, 64 heads, "
    "context 2,048, vocabulary padded to 50,432; batch 1,538 contexts, 150,000 steps; model card: tensor parallel "
    "2, pipeline parallel 4; training time 1,830 hours (as summarised at nl2code.github.io/posts/GPT-NeoX); the "
    "run's configuration, github.com/EleutherAI/gpt-neox configs/20B.yml: pipe-parallel-size 4, model-parallel-size "
    "2, zero stage 1, train_micro_batch_size_per_gpu 4, gradient_accumulation_steps 32, checkpoint-activations, "
    "checkpoint-num-layers 1, synchronize-each-layer, fp16"
)
# NVIDIA's own training stack since 2024: Megatron-Core with Transformer Engine (fused attention, FP8), driven by
# NeMo or Megatron-Bridge.  Not Megatron-LM as Narayanan/Korthikanti ran it in 2021-22 (no TE, no FP8, no
# overlapped gradient reduction), so it gets its own GEMM factor.
MCORE = "Megatron-Core + Transformer Engine (NeMo / Megatron-Bridge, 2024+)"
