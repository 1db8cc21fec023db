"""rcc_xcorr.xcorr's place: its module ``BatchXCorr`` holds the class ``BatchXCorr``."""
