# Vendored from https://github.com/huggingface/sentence-transformers @ cad211983f36ce458e9b3360f3e11b29fc54cbd8: tests/__init__.py (Apache-2.0, see LICENSE and NOTICE.txt here)
