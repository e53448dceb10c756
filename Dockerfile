# Reproduction image: the pinned stack of constraints.txt on the official
# TensorFlow GPU image. The base tag must equal the `tensorflow==` pin in
# constraints.txt (tests/test_environment_files.py checks it). pip installs
# the package without the `gpu` extra: the image's own TensorFlow and CUDA
# stay, and only Keras and the rest are added at their pins (the extra would
# add a second CUDA as wheels, several GB).
#
#   docker build -t keras_dhsps .
#   docker run --gpus all -v "$PWD/results:/results" keras_dhsps
#   docker run --gpus all -v /path/to/datasets:/data -v "$PWD/results:/results" \
#       keras_dhsps python -m keras_dhsps reproduce CONFIG.py \
#       --data-root /data --output /results/NAME
FROM tensorflow/tensorflow:2.21.0-gpu

ENV KERAS_BACKEND=tensorflow \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/keras_dhsps
COPY pyproject.toml constraints.txt README.md LICENSE ./
COPY keras_dhsps ./keras_dhsps
COPY reproduce ./reproduce
RUN python -m pip install -c constraints.txt .

# Datasets are mounted at /data (pass --data-root /data), results at /results.
VOLUME ["/data", "/results"]

CMD ["python", "-m", "keras_dhsps", "reproduce", \
     "reproduce/configs/digits_mosaic.py", "--output", "/results/digits-mosaic"]
